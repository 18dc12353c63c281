from django.db import models

from fiscobridge.core import clock


class PeriodicRun(models.Model):
    """When a periodic job (fiscobridge/jobs.py) runs next. Whichever worker moves `next_run_at`
    forward with a conditional UPDATE enqueues the run, so two workers never enqueue it twice."""

    name = models.CharField(max_length=64, unique=True)
    next_run_at = models.DateTimeField(default=clock.now)
    last_enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WorkerHeartbeat(models.Model):
    """Each running worker process says it is alive once per schedule tick (`/readyz` reads the
    newest). Rows of workers gone for a day are deleted by the next heartbeat of any worker."""

    worker = models.CharField(max_length=100, unique=True)  # host:pid
    started_at = models.DateTimeField(default=clock.now)
    last_seen_at = models.DateTimeField(default=clock.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.worker} at {self.last_seen_at:%Y-%m-%d %H:%M:%S}"
