"""Partner Portal work for the task queue: batches too large to issue in a request."""

from django_tasks import task

from fiscobridge.partners.large_batches import forget_unclaimed_codes, run_issue_job


@task()
def issue_large_batch(job_id: int) -> dict:
    """Issue a queued job's batch (partners/large_batches.py). Its result names the batch, never
    a code: task results are stored rows."""
    job = run_issue_job(job_id)
    return {"job": job.pk, "status": job.status, "batch": job.batch_id}


@task()
def forget_unclaimed_batch_codes() -> dict:
    """Periodic: encrypted codes nobody downloaded in time are deleted."""
    return {"forgotten": forget_unclaimed_codes()}
