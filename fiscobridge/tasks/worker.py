"""`fiscobridge worker`: django-tasks-db's worker loop, plus the periodic schedule.

The schedule runs in a thread of each worker process; `enqueue_due` makes that safe with any
number of workers (docs/tasks.md).
"""

import logging
import os
import socket
import threading
from datetime import timedelta

from django.core.management import call_command
from django.db import close_old_connections, connection
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction

from fiscobridge.core import clock
from fiscobridge.tasks.models import WorkerHeartbeat
from fiscobridge.tasks.schedule import PeriodicJob, enqueue_due

logger = logging.getLogger("fiscobridge.tasks")


WORKER_NAME = f"{socket.gethostname()[:80]}:{os.getpid()}"
FORGET_AFTER = timedelta(days=1)


def heartbeat(name: str = WORKER_NAME) -> None:
    """This worker is alive (read by `/readyz`); workers silent for a day are forgotten."""
    moment = clock.now()
    updated = WorkerHeartbeat.objects.filter(worker=name).update(last_seen_at=moment)
    if not updated:
        WorkerHeartbeat.objects.get_or_create(worker=name, defaults={"started_at": moment, "last_seen_at": moment})
    WorkerHeartbeat.objects.filter(last_seen_at__lt=moment - FORGET_AFTER).delete()


def _schedule_forever(jobs: list[PeriodicJob], tick_seconds: float, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            close_old_connections()
            heartbeat()
            enqueue_due(jobs)
        except Exception:  # the database is away, say: try again at the next tick
            logger.exception("periodic jobs could not be enqueued; trying again in %s s", tick_seconds)
        stop.wait(tick_seconds)
    connection.close()


def run_worker(*, jobs: list[PeriodicJob], interval: float, tick_seconds: float, batch: bool, verbosity: int) -> None:
    """Run tasks until stopped (SIGINT/SIGTERM finish the current task first). With `batch`:
    enqueue the due periodic jobs once, run every task that is ready, and return."""
    if verbosity == 0:  # the worker loop sets this up itself; the batch path runs without it
        for name in ("django_tasks", "django_tasks_db"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if batch:
        heartbeat()
        enqueue_due(jobs)
        run_ready_tasks()
        return
    stop = threading.Event()
    threading.Thread(target=_schedule_forever, args=(jobs, tick_seconds, stop), name="schedule", daemon=True).start()
    call_command("db_worker", queue_name="*", interval=interval, reload=False, verbosity=verbosity)


def run_ready_tasks() -> int:
    """Run every task that is ready now, in this process, then return how many ran.

    django-tasks-db's own loop, minus what only a long-running process needs: signal handlers,
    sleeping, and closing the database connection between tasks (which would end a test's
    transaction). The claim is the library's: a row lock with SKIP LOCKED, so this can run
    beside real workers.
    """
    worker = Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=f"batch-{os.getpid()}",
        excluded_queue_names=[],
    )
    ran = 0
    while True:
        with exclusive_transaction():
            result = DBTaskResult.objects.ready().filter(backend_name="default").get_locked()
            if result is None:
                return ran
            result.claim(worker.worker_id)
        worker.run_task(result)
        ran += 1
