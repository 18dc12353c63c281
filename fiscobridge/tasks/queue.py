"""Enqueueing with the transaction, and retrying with backoff."""

import functools
import logging
from datetime import timedelta

from django.db import transaction
from django_tasks.signals import task_enqueued
from django_tasks.utils import normalize_json
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult, get_date_max

from fiscobridge.core import clock

logger = logging.getLogger("fiscobridge.tasks")


def enqueue_with_transaction(task, *args, **kwargs) -> None:
    """Enqueue so that the task exists exactly when the caller's transaction commits.

    The database backend writes its row in the caller's transaction (rolled back with it); any
    other backend (Redis, say) cannot take part in it, so the task is sent after the commit.
    """
    if isinstance(task.get_backend(), DatabaseBackend):
        task.enqueue(*args, **kwargs)
    else:
        transaction.on_commit(lambda: task.enqueue(*args, **kwargs), robust=True)


def task_row(task, *args, **kwargs):
    """The database backend's row for `task(*args, **kwargs)`, unsaved: for a hot path that sends
    it with its other final writes in one round trip (keys/redemption.py), then calls
    `announce`. The same values as the backend's own `enqueue` (tests/test_tasks.py compares
    the two), so the worker cannot tell them apart."""
    backend = task.get_backend()
    if not isinstance(backend, DatabaseBackend):
        return None
    backend.validate_task(task)
    return DBTaskResult(
        id=backend._get_id(),
        args_kwargs=normalize_json({"args": args, "kwargs": kwargs}),
        priority=task.priority,
        task_path=task.module_path,
        queue_name=task.queue_name,
        run_after=task.run_after or get_date_max(),  # what the backend's pre_save handler stores
        backend_name=backend.alias,
    )


def announce(row) -> None:
    """What the backend does after writing a task row: the `task_enqueued` signal."""
    task_enqueued.send(type(row.task.get_backend()), task_result=row.task_result)


def retrying(*, backoff: tuple[int, ...]):
    """Decorate a task function (under `@task(takes_context=True)`): when it raises, the same call
    is enqueued again after backoff[n] seconds (n: retries so far), and this run is recorded as
    failed with its traceback (staff see it in the admin). After the last delay it just fails."""

    def decorate(func):
        @functools.wraps(func)
        def run(context, *args, retry: int = 0, **kwargs):
            try:
                return func(context, *args, **kwargs)
            except Exception:
                if retry < len(backoff):
                    again = clock.now() + timedelta(seconds=backoff[retry])
                    context.task_result.task.using(run_after=again).enqueue(*args, retry=retry + 1, **kwargs)
                    logger.warning("task %s failed; retry %s at %s", func.__name__, retry + 1, again.isoformat())
                else:
                    logger.error("task %s failed after %s retries; giving up", func.__name__, retry)
                raise

        return run

    return decorate
