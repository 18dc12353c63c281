"""The task queue's own upkeep."""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django_tasks import TaskResultStatus, task
from django_tasks_db.models import DBTaskResult

from fiscobridge.core import clock

logger = logging.getLogger("fiscobridge.tasks")


@task()
def prune_task_results() -> None:
    """Periodic: delete finished task results after TASKS_KEEP_RESULTS_DAYS (failed ones are
    kept three times as long, for staff to read)."""
    days = settings.TASKS_KEEP_RESULTS_DAYS
    call_command("prune_db_task_results", queue_name="*", min_age_days=days, failed_min_age_days=3 * days, verbosity=0)


@task()
def recover_lost_tasks() -> dict:
    """Periodic: a task still *running* after TASKS_LOST_AFTER_SECONDS lost its worker (killed,
    its machine gone; django-tasks-db never takes a claim back). It is marked failed, for staff
    to see, and enqueued again: every task of ours is safe to run twice (e-mail has its outbox
    dedupe keys, the periodic jobs re-read what they need)."""
    cutoff = clock.now() - timedelta(seconds=settings.TASKS_LOST_AFTER_SECONDS)
    recovered = 0
    for row in DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING, started_at__lt=cutoff):
        with transaction.atomic():
            lost = DBTaskResult.objects.filter(pk=row.pk, status=TaskResultStatus.RUNNING).update(
                status=TaskResultStatus.FAILED,
                finished_at=clock.now(),
                exception_class_path="fiscobridge.tasks.LostWorker",
                traceback=f"No worker finished this task within {settings.TASKS_LOST_AFTER_SECONDS} s; enqueued again.",
            )
            if lost:
                row.task.enqueue(*row.task_result.args, **row.task_result.kwargs)
                recovered += 1
    if recovered:
        logger.warning("%s task(s) lost by their worker were enqueued again", recovered)
    return {"recovered": recovered}
