"""Enqueueing with the transaction, and retrying with backoff."""

import functools
import logging
from datetime import timedelta

from django.db import transaction
from django_tasks_db import DatabaseBackend

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
