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
