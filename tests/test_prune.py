"""Data lifecycle (issue 11.7): `fiscobridge prune` deletes what outlived its retention and keeps
everything that still counts (a failure in its window, a running lock, pending e-mail, audit)."""

from datetime import timedelta

from axes.models import AccessLog
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client

from fiscobridge.audit.models import Event
from fiscobridge.cli import main as cli_main
from fiscobridge.core import clock
from fiscobridge.jobs import PERIODIC_JOBS
from fiscobridge.keys.codes import generate_code
from fiscobridge.keys.models import FailureCounter, RedeemAttempt
from fiscobridge.notifications.models import EmailStatus, OutboundEmail
from fiscobridge.prune import prune
from tests.factories import grant, post_json, run_tasks

VALIDATE = "/api/v1/keys/validate"


def _fail(customer):
    response = post_json(customer.client, VALIDATE, {"key": generate_code("pos"), "product": "pos"})
    assert response.json()["error"]["code"] == "not_available"


def test_prune_deletes_only_what_outlived_its_retention(customer, outsider, issue, settings):
    now = clock.now()
    long_ago = now - timedelta(days=120)
    _fail(customer)  # an attempt and a counter of long ago…
    RedeemAttempt.objects.update(at=long_ago)
    FailureCounter.objects.update(recent=[long_ago.isoformat()], locked_until=None)
    _fail(outsider)  # …and a fresh one, whose counters still count
    grant(customer, issue)  # an activation: its e-mails, sent, one of them long ago
    run_tasks()
    sent = OutboundEmail.objects.filter(status=EmailStatus.SENT)
    assert sent.count() >= 2
    old_mail = sent.first()
    OutboundEmail.objects.filter(pk=old_mail.pk).update(sent_at=long_ago)
    OutboundEmail.objects.create(
        kind=old_mail.kind,
        dedupe_key="still-pending",
        recipients=["a@b.example"],
        subject="s",
        body="b",
        created_at=long_ago,
    )
    Client().post("/login/", {"username": "nobody@example.com", "password": "x"})
    AccessLog.objects.create(username="old@example.com", ip_address="203.0.113.1", user_agent="x")
    AccessLog.objects.update(attempt_time=long_ago)
    expired = SessionStore()
    expired.set_expiry(-10)
    expired.create()
    events_before = Event.objects.count()
    fresh_counters = set(FailureCounter.objects.exclude(recent=[long_ago.isoformat()]).values_list("pk", flat=True))

    report = prune(at=now)

    assert report["key_attempts"] == 1 and RedeemAttempt.objects.filter(account=outsider.account).count() == 1
    # The old failure's session and account counters; its IP counter (127.0.0.1) counts the fresh one too.
    assert report["failure_counters"] == 2
    assert set(FailureCounter.objects.values_list("pk", flat=True)) == fresh_counters
    assert report["sent_emails"] == 1 and not OutboundEmail.objects.filter(pk=old_mail.pk).exists()
    assert OutboundEmail.objects.filter(dedupe_key="still-pending").exists()  # pending is never pruned
    assert report["login_attempts"] >= 1 and not AccessLog.objects.filter(username="old@example.com").exists()
    assert report["sessions"] >= 1 and not Session.objects.filter(session_key=expired.session_key).exists()
    assert report["audit_events"] == 0 and Event.objects.count() == events_before  # kept forever by default

    settings.AUDIT_KEEP_DAYS = 30
    Event.objects.filter(pk=Event.objects.order_by("pk").first().pk).update(at=long_ago)
    assert prune(at=now)["audit_events"] == 1


def test_a_lock_still_running_keeps_its_counter(customer, settings):
    settings.REDEEM_SESSION_FAILURE_LIMIT = 1
    _fail(customer)
    long_ago = clock.now() - timedelta(days=120)
    FailureCounter.objects.update(recent=[long_ago.isoformat()], locked_until=clock.now() + timedelta(minutes=5))
    assert prune()["failure_counters"] == 0


def test_retention_never_goes_below_what_the_rules_need(customer, settings):
    settings.PRUNE_ATTEMPTS_DAYS = 0  # a misconfiguration: still keeps a day (the account window)
    _fail(customer)
    RedeemAttempt.objects.update(at=clock.now() - timedelta(hours=20))
    assert prune()["key_attempts"] == 0


def test_prune_is_a_command_and_a_daily_job(db, capsys):
    assert cli_main(["prune"]) == 0
    assert capsys.readouterr().out.startswith("Deleted: sessions ")
    assert [job.every for job in PERIODIC_JOBS if job.name == "prune"] == [timedelta(days=1)]
