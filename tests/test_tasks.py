"""The task queue (issue 9, item 1): e-mail leaves the request, a real worker process sends it,
retries with backoff, the periodic jobs are enqueued once however many workers tick, and staff
see failed tasks.

The worker runs as a real `fiscobridge worker --batch` process on the test database, against a
real local SMTP server (tests/smtp_server.py): one that accepts and then stalls, and one that
delivers.
"""

import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from fiscobridge.core import clock
from fiscobridge.core.hot_sql import insert_sql
from fiscobridge.jobs import PERIODIC_JOBS
from fiscobridge.notifications.models import EmailStatus, OutboundEmail
from fiscobridge.notifications.tasks import send_activation_emails
from fiscobridge.tasks.housekeeping import recover_lost_tasks
from fiscobridge.tasks.queue import retrying, task_row
from fiscobridge.tasks.schedule import enqueue_due
from tests.app_server import current_database_url
from tests.factories import activate, browser_for, run_at_once, run_tasks
from tests.smtp_server import SmtpSink, StalledSmtp

ROOT = Path(__file__).resolve().parent.parent
READY, FAILED, SUCCESSFUL = "READY", "FAILED", "SUCCESSFUL"


def run_worker(**env) -> subprocess.CompletedProcess:
    """`fiscobridge worker --batch` in its own process, on the test database."""
    environment = {**os.environ, "DATABASE_URL": current_database_url(), "EMAIL_USE_TLS": "false", **env}
    return subprocess.run(
        [sys.executable, "-m", "fiscobridge.cli", "worker", "--batch", "--quiet"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_activation_never_waits_for_the_mail_server_and_the_worker_delivers_later(customer, reseller, issue, settings):
    stalled = StalledSmtp()
    # Even with SMTP configured for this (web) process, the request path never opens a connection.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = stalled.host, stalled.port, False
    codes = issue(quantity=3)
    for code in codes:
        assert activate(customer, code).status_code == 201
    assert stalled.connections == 0
    assert Counter(DBTaskResult.objects.values_list("status", flat=True)) == {READY: 3}

    # The worker meets the stalled server: each send gives up after EMAIL_TIMEOUT, the e-mails
    # stay pending with the reason, and each task is retried later (with backoff).
    # A short timeout (a fraction of a second is allowed) keeps the test short: the worker meets
    # the stall on each of the six e-mails and again in the periodic sweep.
    mail_env = {"EMAIL_HOST": stalled.host, "EMAIL_PORT": str(stalled.port), "EMAIL_TIMEOUT": "0.25"}
    result = run_worker(**mail_env)
    assert result.returncode == 0, result.stderr
    assert stalled.connections >= 1
    pending = OutboundEmail.objects.filter(status=EmailStatus.PENDING)
    assert pending.count() == 6 and all("timed out" in row.last_error for row in pending)
    tasks = DBTaskResult.objects.filter(task_path=send_activation_emails.module_path)
    # At least one failed run each (a retry that came due while the worker ran may have failed
    # too), and each activation has exactly one retry waiting for its time.
    assert tasks.filter(status=FAILED).count() >= 3
    retries = tasks.filter(status=READY)
    assert retries.count() == 3 and all(r.run_after > clock.now() for r in retries)
    stalled.close()

    # The mail server is back, and the retries come due (their backoff has passed): the next
    # worker run delivers every e-mail once.
    retries.update(run_after=clock.now())
    sink = SmtpSink()
    try:
        result = run_worker(EMAIL_HOST=sink.host, EMAIL_PORT=str(sink.port), EMAIL_TIMEOUT="5")
        assert result.returncode == 0, result.stderr
    finally:
        sink.close()
    assert len(sink.messages) == 6
    assert sorted(r for m in sink.messages for r in m.recipients).count(f"<{customer.user.email}>") == 3
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {EmailStatus.SENT}
    for message in sink.messages:
        for code in codes:
            assert code[4:].encode() not in message.data


@pytest.mark.django_db(transaction=True)
def test_periodic_jobs_are_enqueued_once_however_many_workers_tick():
    results = run_at_once([lambda: enqueue_due(PERIODIC_JOBS)] * 4)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(name for names in results for name in names) == sorted(job.name for job in PERIODIC_JOBS)
    paths = Counter(DBTaskResult.objects.values_list("task_path", flat=True))
    assert paths == Counter(job.task.module_path for job in PERIODIC_JOBS)
    assert enqueue_due(PERIODIC_JOBS) == []  # none is due again yet
    later = clock.now() + timedelta(minutes=6)
    with time_machine.travel(later):
        # Due again, but their first runs still wait in the queue: not joined by a second one.
        assert enqueue_due(PERIODIC_JOBS) == []
    run_tasks()
    with time_machine.travel(later + timedelta(minutes=6)):
        # every 5 minutes, and the webhooks' sweep and the dashboards' fold every minute
        assert enqueue_due(PERIODIC_JOBS) == [
            "send-pending-emails",
            "recover-lost-tasks",
            "deliver-due-webhooks",
            "fold-dashboard-activations",
        ]


def test_a_task_row_written_with_the_activation_is_what_the_backend_writes(db):
    row = task_row(send_activation_emails, 42)
    with connection.cursor() as cursor:
        cursor.execute(*insert_sql([row]))
    enqueued = send_activation_emails.enqueue(42)
    ours, theirs = DBTaskResult.objects.get(pk=row.pk), DBTaskResult.objects.get(pk=enqueued.id)
    differs = {"id", "enqueued_at"}
    fields = [f.attname for f in DBTaskResult._meta.concrete_fields if f.attname not in differs]
    assert {f: getattr(ours, f) for f in fields} == {f: getattr(theirs, f) for f in fields}
    assert ours.task_result.args == [42] and ours.task_result.status == READY


ATTEMPTS: list[int] = []


@task(takes_context=True)
@retrying(backoff=(0,))
def always_fails(context, label: str) -> None:
    ATTEMPTS.append(context.attempt)
    raise RuntimeError(f"{label} cannot succeed")


def test_a_failing_task_is_retried_then_given_up_and_staff_see_it(staff, customer):
    ATTEMPTS.clear()
    always_fails.enqueue("nightly")
    run_tasks()  # the first run fails; its retry (no delay) runs in the same batch and fails too
    run_tasks()  # nothing is left to run
    assert len(ATTEMPTS) == 2
    assert Counter(DBTaskResult.objects.values_list("status", flat=True)) == {FAILED: 2}
    assert all("nightly cannot succeed" in r.traceback for r in DBTaskResult.objects.all())

    url = "/admin/django_tasks_database/dbtaskresult/"
    page = browser_for(staff).get(url, {"status__exact": FAILED})
    assert page.status_code == 200 and page.content.decode().count("always_fails") >= 2
    assert browser_for(customer).get(url).status_code == 302  # customers are sent to log in


def test_a_task_whose_worker_died_is_failed_and_enqueued_again(db, settings):
    send_activation_emails.enqueue(7)
    lost = DBTaskResult.objects.get()
    lost.claim("killed-worker")  # as a worker does before it runs the task
    DBTaskResult.objects.filter(pk=lost.pk).update(started_at=clock.now() - timedelta(hours=2))
    assert recover_lost_tasks.call() == {"recovered": 1}
    lost.refresh_from_db()
    assert lost.status == FAILED and "enqueued again" in lost.traceback
    again = DBTaskResult.objects.get(status=READY)
    assert again.task_path == lost.task_path and again.args_kwargs == lost.args_kwargs
    assert recover_lost_tasks.call() == {"recovered": 0}  # a recent or finished task is left alone
