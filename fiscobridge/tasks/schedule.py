"""Periodic jobs: enqueue each job when it is due, once, however many workers tick."""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django_tasks import TaskResultStatus
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from fiscobridge.core import clock
from fiscobridge.tasks.models import PeriodicRun
from fiscobridge.tasks.queue import enqueue_with_transaction

logger = logging.getLogger("fiscobridge.tasks")


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    task: object  # a django-tasks Task
    every: timedelta


def enqueue_due(jobs: list[PeriodicJob]) -> list[str]:
    """Enqueue the jobs that are due; returns their names. Safe to call from any number of
    workers at once: a job's run is enqueued by the one call whose conditional UPDATE moved its
    next run forward, in the same transaction as the task row."""
    moment = clock.now()
    PeriodicRun.objects.bulk_create(
        [PeriodicRun(name=job.name, next_run_at=moment) for job in jobs], ignore_conflicts=True
    )
    enqueued = []
    for job in jobs:
        with transaction.atomic():
            won = PeriodicRun.objects.filter(name=job.name, next_run_at__lte=moment).update(
                next_run_at=moment + job.every, last_enqueued_at=moment
            )
            # A run still waiting or running (a slow mail server, say) is not joined by another.
            if won and not _unfinished(job):
                enqueue_with_transaction(job.task)
                enqueued.append(job.name)
    if enqueued:
        logger.info("periodic jobs enqueued: %s", ", ".join(enqueued))
    return enqueued


def _unfinished(job: PeriodicJob) -> bool:
    if not isinstance(job.task.get_backend(), DatabaseBackend):
        return False  # another backend keeps its queue elsewhere: enqueue as scheduled
    unfinished = (TaskResultStatus.READY, TaskResultStatus.RUNNING)
    return DBTaskResult.objects.filter(task_path=job.task.module_path, status__in=unfinished).exists()
