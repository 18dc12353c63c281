"""E-mail (issue 4, item 3): activation notice and receipt after commit, reminders at 30/7/1 days,
the outbox's once-only and retry rules, and never a key code in a message.

Mail is captured by Django's locmem backend (`mailoutbox`). E-mail is sent by the task worker:
`run_tasks()` runs the queued tasks in the test's process, as the worker would next
(tests/test_tasks.py runs real worker processes).
"""

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django_tasks_db.models import DBTaskResult

from fiscobridge.accounts.models import User
from fiscobridge.cli import main
from fiscobridge.keys.models import ActivationKey
from fiscobridge.keys.services import revoke_key, void_key
from fiscobridge.notifications import letters
from fiscobridge.notifications import sending as notifications
from fiscobridge.notifications.models import EmailKind, EmailStatus, OutboundEmail
from fiscobridge.notifications.outbox import queue_key_voided_emails
from fiscobridge.notifications.reminders import send_reminders
from fiscobridge.notifications.sending import send_outbound
from fiscobridge.subscriptions.models import Source, Subscription
from tests import factories
from tests.factories import PASSWORD, key_of, redeem, run_at_once, run_tasks

T0 = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
FAILING = "tests.mail_backends.FailingBackend"


@pytest.fixture
def activate():
    """Activate a key for a persona, then let the worker run what the activation queued."""

    def _activate(persona, code, product="pos", renew=None, expect=201):
        extra = {"renew": renew} if renew else {}
        response = factories.activate(persona, code, product, **extra)
        assert response.status_code == expect, response.content
        run_tasks()
        return response.json()

    return _activate


def assert_no_code(codes, mails=(), rows=None):
    """Neither a code nor its 12 characters (with or without dashes) appear anywhere in a message."""
    rows = OutboundEmail.objects.all() if rows is None else rows
    texts = [m.subject + "\n" + m.body for m in mails] + [r.subject + "\n" + r.body for r in rows]
    for code in codes:
        body = code[4:]
        for text in texts:
            assert code not in text and body not in text and body.replace("-", "") not in text


def by_recipient(mails) -> dict[str, list]:
    result: dict[str, list] = {}
    for mail in mails:
        for address in mail.to:
            result.setdefault(address, []).append(mail)
    return result


# --- activation ------------------------------------------------------------------------------


def test_activation_sends_a_receipt_to_the_customer_and_a_notice_to_the_partner(customer, reseller, issue, mailoutbox):
    [code] = issue(seats=3, months=12, reference="order 7781")
    redeem(customer, code)
    # Queued with the activation (one task row), composed and sent by the worker, never in the request.
    assert len(mailoutbox) == 0 and not OutboundEmail.objects.exists()
    [queued] = DBTaskResult.objects.all()
    assert queued.task_path == "fiscobridge.notifications.tasks.send_activation_emails"
    run_tasks()

    key = ActivationKey.objects.get()
    mails = by_recipient(mailoutbox)
    assert len(mailoutbox) == 2 and set(mails) == {customer.user.email, reseller.user.email}
    [receipt] = mails[customer.user.email]
    assert receipt.subject.startswith("Activation receipt: Cloud POS, 3 seats until ")
    assert key.hint in receipt.body and "Reseller One" in receipt.body and "Shop One" in receipt.body
    [notice] = mails[reseller.user.email]
    assert notice.subject == f"Key {key.hint} was activated by Shop One"
    assert "order 7781" in notice.body and "Shop One" in notice.body
    assert set(OutboundEmail.objects.values_list("kind", "status")) == {
        (EmailKind.ACTIVATION_RECEIPT, EmailStatus.SENT),
        (EmailKind.KEY_ACTIVATED, EmailStatus.SENT),
    }
    assert all(row.sent_at is not None and row.attempts == 1 for row in OutboundEmail.objects.all())
    assert_no_code([code], mailoutbox)


def test_receipt_goes_to_the_activating_user_and_the_notice_to_every_active_partner_user(
    customer, teammate, reseller, issue, activate, mailoutbox
):
    User.objects.create_user("colleague@reseller-one.example", PASSWORD, partner=reseller.partner)
    User.objects.create_user("left@reseller-one.example", PASSWORD, partner=reseller.partner, is_active=False)
    [code] = issue()
    activate(teammate, code)
    receipt = next(m for m in mailoutbox if m.subject.startswith("Activation receipt"))
    notice = next(m for m in mailoutbox if m.subject.startswith("Key "))
    assert receipt.to == [teammate.user.email]
    assert notice.to == ["colleague@reseller-one.example", reseller.user.email]


def test_a_renewal_receipt_says_when_the_new_seats_start(customer, issue, activate, mailoutbox):
    first, second = issue(quantity=2)
    subscription_id = activate(customer, first)["subscription"]["id"]
    mailoutbox.clear()
    activate(customer, second, renew=subscription_id)
    receipt = next(m for m in mailoutbox if m.to == [customer.user.email])
    assert "continues your subscription" in receipt.body
    assert_no_code([first, second], mailoutbox)


def test_a_failed_activation_sends_nothing(customer, outsider, issue, activate, mailoutbox, staff):
    taken, revoked, renewing = issue(quantity=3)
    activate(outsider, taken)
    revoke_key(key=key_of(revoked), reason="lost", actor=staff.user)
    mailoutbox.clear()
    OutboundEmail.objects.all().delete()
    activate(customer, taken, expect=409)  # activated elsewhere
    activate(customer, revoked, expect=409)
    activate(customer, "POS-2222-2222-2223", expect=400)  # bad check character
    # The conditional UPDATE wins here, then the renewal target is refused: all rolled back.
    activate(customer, renewing, renew=999_999, expect=400)
    assert ActivationKey.objects.filter(status="activated").count() == 1
    assert OutboundEmail.objects.count() == 0 and mailoutbox == []


def test_a_broken_e_mail_never_costs_the_customer_their_activation(
    customer, issue, activate, mailoutbox, monkeypatch, caplog
):
    def broken(template, context):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(letters, "render_body", broken)
    [code] = issue()
    with caplog.at_level(logging.WARNING, logger="fiscobridge.tasks"):
        activate(customer, code)
    assert Subscription.objects.filter(account=customer.account).count() == 1
    assert OutboundEmail.objects.count() == 0 and mailoutbox == []
    # The task failed where staff can see it (its traceback kept), and is tried again later.
    failed = DBTaskResult.objects.get(status="FAILED")
    assert "template exploded" in failed.traceback
    retry = DBTaskResult.objects.get(status="READY")
    assert retry.args_kwargs["kwargs"] == {"retry": 1} and retry.run_after > failed.finished_at
    assert "retry 1 at" in caplog.text


def test_a_mail_failure_keeps_the_activation_and_the_next_run_delivers(
    customer, reseller, issue, activate, mailoutbox, settings, caplog, capsys
):
    settings.EMAIL_BACKEND = FAILING
    [code] = issue()
    with caplog.at_level(logging.WARNING, logger="fiscobridge.notifications"):
        activate(customer, code)  # 201: the mail server being down does not matter
    assert Subscription.objects.filter(account=customer.account).count() == 1
    rows = list(OutboundEmail.objects.order_by("kind"))
    assert [(r.status, r.attempts) for r in rows] == [(EmailStatus.PENDING, 1)] * 2
    assert all("SMTPServerDisconnected" in r.last_error for r in rows)
    assert "retried by the next run" in caplog.text
    for row in rows:  # the log names the failure, never the message
        assert row.body.strip().splitlines()[2] not in caplog.text

    # The server is still down for the cron run: still pending, exit status 1 for monitoring.
    assert main(["send-reminders"]) == 1
    assert OutboundEmail.objects.filter(status=EmailStatus.PENDING, attempts=2).count() == 2

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    capsys.readouterr()
    assert main(["send-reminders"]) == 0
    out = capsys.readouterr().out
    assert "E-mails sent: 2" in out
    assert sorted(m.to[0] for m in mailoutbox) == sorted([customer.user.email, reseller.user.email])
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {EmailStatus.SENT}
    assert main(["send-reminders"]) == 0 and len(mailoutbox) == 2  # nothing sent twice
    assert_no_code([code], mailoutbox)


def test_an_e_mail_that_keeps_failing_is_given_up_after_the_limit(customer, issue, activate, settings):
    settings.EMAIL_BACKEND = FAILING
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    [code] = issue()
    activate(customer, code)  # attempt 1
    send_outbound()  # attempt 2
    send_outbound()  # attempt 3: gives up
    assert set(OutboundEmail.objects.values_list("status", "attempts")) == {(EmailStatus.FAILED, 3)}
    assert send_outbound().sent == 0  # a given-up e-mail is not retried until staff requeue it


def test_two_senders_never_send_the_same_row(customer, issue, activate, settings):
    settings.EMAIL_BACKEND = FAILING
    [code] = issue()
    activate(customer, code)
    row = OutboundEmail.objects.first()
    assert notifications._claim(row.pk) is not None
    assert notifications._claim(row.pk) is None  # the first sender holds it
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=notifications.CLAIM_SECONDS + 1)):
        assert notifications._claim(row.pk) is not None  # a sender that died lets go eventually


def test_voiding_a_key_tells_the_customer_and_the_partner(customer, reseller, staff, issue, activate, mailoutbox):
    [code] = issue()
    activate(customer, code)
    mailoutbox.clear()
    key = ActivationKey.objects.get()
    void_key(key=key, reason="chargeback", actor=staff.user)
    queue_key_voided_emails(key=ActivationKey.objects.get())
    run_tasks()
    mails = by_recipient(mailoutbox)
    assert set(mails) == {customer.user.email, reseller.user.email}
    assert "chargeback" in mails[customer.user.email][0].body
    assert mails[reseller.user.email][0].subject == f"Key {key.hint} was voided by FiscoBridge"
    assert_no_code([code], mailoutbox)


# --- reminders -------------------------------------------------------------------------------


def _reminders(mails):
    customer = [m for m in mails if m.subject.startswith("Your ")]
    partner = [m for m in mails if m.subject.startswith("Renewal lead")]
    return customer, partner


def test_reminders_at_30_7_and_1_days_to_the_customer_and_the_partner_once_each(
    customer, teammate, reseller, issue, activate, mailoutbox
):
    with time_machine.travel(T0, tick=False) as clock:
        [code] = issue(seats=2, months=12)
        activate(customer, code)
        subscription = Subscription.objects.get()
        key = ActivationKey.objects.get()
        mailoutbox.clear()

        clock.move_to(subscription.expires_at - timedelta(days=31))
        assert send_reminders().queued == 0 and mailoutbox == []

        for days, label in ((30, "30 days"), (7, "7 days"), (1, "1 day")):
            clock.move_to(subscription.expires_at - timedelta(days=days, minutes=-30))
            report = send_reminders()
            assert report.queued == 2 and report.sending.sent == 2
            to_customer, to_partner = _reminders(mailoutbox)
            assert len(to_customer) == 1 and len(to_partner) == 1
            assert to_customer[0].to == sorted([customer.user.email, teammate.user.email])
            assert to_customer[0].subject == f"Your Cloud POS subscription (2 seats) ends in {label}"
            assert "Reseller One" in to_customer[0].body and key.hint in to_customer[0].body
            assert to_partner[0].to == [reseller.user.email]
            assert to_partner[0].subject == f"Renewal lead: Shop One's key {key.hint} ends in {label}"
            assert_no_code([code], mailoutbox)
            mailoutbox.clear()

            # A second run (an hour later, as cron would) sends nothing again.
            clock.shift(timedelta(hours=1))
            assert send_reminders().queued == 0 and mailoutbox == []

        clock.move_to(subscription.expires_at + timedelta(hours=1))
        assert send_reminders().queued == 0 and mailoutbox == []
    assert OutboundEmail.objects.filter(subscription=subscription, kind=EmailKind.SUBSCRIPTION_REMINDER).count() == 3
    assert OutboundEmail.objects.filter(subscription=subscription, kind=EmailKind.RENEWAL_LEAD).count() == 3


def test_a_missed_week_sends_only_the_reminder_that_is_due_now(customer, issue, activate, mailoutbox):
    with time_machine.travel(T0, tick=False) as clock:
        [code] = issue(months=6)
        activate(customer, code)
        mailoutbox.clear()
        clock.move_to(Subscription.objects.get().expires_at - timedelta(days=5))
        send_reminders()
        to_customer, to_partner = _reminders(mailoutbox)
        assert [m.subject[-6:] for m in to_customer + to_partner] == ["7 days", "7 days"]


def test_a_one_month_key_is_not_told_30_days_on_the_day_it_starts(customer, issue, activate, mailoutbox):
    with time_machine.travel(datetime(2027, 2, 1, 12, 0, tzinfo=UTC), tick=False) as clock:
        [code] = issue(months=1)  # 28 days: the 30-day mark is before its start
        activate(customer, code)
        mailoutbox.clear()
        assert send_reminders().queued == 0
        clock.move_to(datetime(2027, 2, 22, 12, 30, tzinfo=UTC))
        assert send_reminders().queued == 2


def test_a_renewed_subscription_gets_no_reminder_but_its_renewal_does(customer, issue, activate, mailoutbox):
    with time_machine.travel(T0, tick=False) as clock:
        first, second = issue(quantity=2, months=12)
        subscription_id = activate(customer, first)["subscription"]["id"]
        renewal_id = activate(customer, second, renew=subscription_id)["subscription"]["id"]
        mailoutbox.clear()
        clock.move_to(Subscription.objects.get(pk=subscription_id).expires_at - timedelta(days=1))
        assert send_reminders().queued == 0 and mailoutbox == []
        clock.move_to(Subscription.objects.get(pk=renewal_id).expires_at - timedelta(days=7))
        assert send_reminders().queued == 2
        assert {row.subscription_id for row in OutboundEmail.objects.filter(kind=EmailKind.RENEWAL_LEAD)} == {
            renewal_id
        }


def test_a_voided_renewal_brings_the_reminder_back(customer, staff, issue, activate, mailoutbox):
    with time_machine.travel(T0, tick=False) as clock:
        first, second = issue(quantity=2, months=12)
        subscription_id = activate(customer, first)["subscription"]["id"]
        renewal_id = activate(customer, second, renew=subscription_id)["subscription"]["id"]
        void_key(key=ActivationKey.objects.get(subscription__id=renewal_id), reason="chargeback", actor=staff.user)
        clock.move_to(Subscription.objects.get(pk=subscription_id).expires_at - timedelta(days=7))
        assert send_reminders().queued == 2


def test_ended_and_stripe_subscriptions_get_no_reminder(customer, staff, issue, activate, mailoutbox):
    with time_machine.travel(T0, tick=False) as clock:
        [code] = issue(months=12)
        activate(customer, code)
        subscription = Subscription.objects.get()
        void_key(key=ActivationKey.objects.get(), reason="fraud", actor=staff.user)
        # (Stripe ids, when the billing columns exist: the stripe source requires them.)
        stripe_ids = {
            f.name: "sub_test"
            for f in Subscription._meta.get_fields()
            if f.name in ("stripe_subscription_id", "stripe_item_id")
        }
        Subscription.objects.create(
            account=customer.account,
            product="pos",
            seats=5,
            source=Source.STRIPE,
            started_at=T0,
            expires_at=subscription.expires_at,
            **stripe_ids,
        )
        clock.move_to(subscription.expires_at - timedelta(days=7))
        assert send_reminders().queued == 0


def test_integrations_reminders_name_the_tier(customer, issue, activate, mailoutbox):
    with time_machine.travel(T0, tick=False) as clock:
        [code] = issue(product="int", tier="growth", seats=4, months=3)
        activate(customer, code, product="int")
        mailoutbox.clear()
        clock.move_to(Subscription.objects.get().expires_at - timedelta(days=7))
        send_reminders()
        to_customer, _ = _reminders(mailoutbox)
        assert to_customer[0].subject == "Your Integrations Growth subscription (4 seats) ends in 7 days"
        assert "connections beyond your remaining seats" in to_customer[0].body


def test_reminders_with_the_mail_server_down_are_queued_once_and_delivered_later(
    customer, issue, activate, mailoutbox, settings
):
    with time_machine.travel(T0, tick=False) as clock:
        [code] = issue(months=12)
        activate(customer, code)
        mailoutbox.clear()
        clock.move_to(Subscription.objects.get().expires_at - timedelta(days=7))
        settings.EMAIL_BACKEND = FAILING
        assert send_reminders().queued == 2
        clock.shift(timedelta(hours=1))
        assert send_reminders().queued == 0
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        clock.shift(timedelta(hours=1))
        report = send_reminders()
        assert report.queued == 0 and report.sending.sent == 2 and len(mailoutbox) == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_overlapping_runs_send_each_reminder_once(customer, reseller, issue, mailoutbox):
    codes = issue(quantity=6, months=12)
    with time_machine.travel(T0, tick=False) as clock:
        for code in codes:
            factories.activate(customer, code)
        mailoutbox.clear()
        clock.move_to(Subscription.objects.order_by("expires_at").first().expires_at - timedelta(days=7))
        results = run_at_once([send_reminders] * 4)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.queued for r in results) >= 12
    assert (
        OutboundEmail.objects.filter(kind__in=[EmailKind.SUBSCRIPTION_REMINDER, EmailKind.RENEWAL_LEAD]).count() == 12
    )
    keys = [m.subject + m.body for m in mailoutbox]
    assert len(mailoutbox) == 12 and len(set(keys)) == 12


# --- settings --------------------------------------------------------------------------------


def _email_settings(**env) -> list[str]:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.EMAIL_BACKEND); print(s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.EMAIL_USE_SSL)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "fiscobridge.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split("\n")


def test_without_smtp_settings_mail_goes_to_the_console_and_with_them_to_smtp():
    assert _email_settings()[0] == "django.core.mail.backends.console.EmailBackend"
    smtp = _email_settings(
        EMAIL_HOST="smtp.example.net",
        EMAIL_PORT="465",
        EMAIL_USE_SSL="true",
        EMAIL_HOST_USER="mailer",
        EMAIL_HOST_PASSWORD="s3cret",
    )
    assert smtp[:2] == ["django.core.mail.backends.smtp.EmailBackend", "smtp.example.net 465 False True"]
