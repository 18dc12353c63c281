"""Warnings before things stop (issue 12 item 3): the Client Portal's banners about subscriptions
and certificates that end within 30 days, POS Manager's mark on such certificates, the certificate
expiry e-mails (through the task queue), and Integrations' invoice meter with its 80 % warning."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from fiscobridge.accounts.services import set_time_zone
from fiscobridge.integrations.services import create_connection, record_invoice_usage
from fiscobridge.notifications.models import EmailKind, OutboundEmail
from fiscobridge.notifications.sending import send_outbound
from fiscobridge.pos.expiry_reminders import queue_due_certificate_reminders
from fiscobridge.pos.models import Certificate
from fiscobridge.pos.tasks import queue_and_send_certificate_expiry_reminders
from fiscobridge.subscriptions.models import Source, Subscription
from tests.factories import browser_for, grant, redeem

T0 = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)


def page(persona, path="/pos/") -> str:
    response = browser_for(persona).get(path)
    assert response.status_code == 200, response.status_code
    return re.sub(r"\s+", " ", response.content.decode())


def banners(html: str) -> list[str]:
    """The texts of the "Ending soon" banners on a page (tags removed)."""
    section = re.search(r'<section class="ending-soon".*?</section>', html)
    if not section:
        return []
    alerts = re.findall(r"<div class=\"alert (\w+)\"[^>]*>(.*?)</div>", section.group(0))
    return [f"{level}: " + re.sub(r"<[^>]+>", "", text).strip() for level, text in alerts]


def certificate(account, uid: str, not_after: datetime, *, status="active", uploaded_at=None) -> Certificate:
    return Certificate.objects.create(
        account=account,
        uid=uid,
        taxpayer="Acme Retail SA",
        location="Store 12",
        serial=uid,
        fingerprint=f"fingerprint-{uid}",
        not_before=not_after - timedelta(days=365),
        not_after=not_after,
        uploaded_at=uploaded_at or not_after - timedelta(days=300),
        status=status,
        revoked_at=not_after - timedelta(days=100) if status == "revoked" else None,
    )


# --- subscriptions ending ----------------------------------------------------------------------


def test_a_subscription_ending_within_30_days_has_a_banner_on_every_portal_page(customer, issue):
    with time_machine.travel(T0, tick=False) as traveller:
        grant(customer, issue, seats=2, months=1)
        subscription = Subscription.objects.get()
        traveller.move_to(subscription.expires_at - timedelta(days=31))
        assert banners(page(customer)) == []
        traveller.move_to(subscription.expires_at - timedelta(days=20))
        [notice] = banners(page(customer))
        assert notice.startswith("warning: Your Cloud POS subscription (2 seats) ends in 20 days")
        assert "Certificates on its seats stop signing then" in notice and "open Subscriptions" in notice
        for path in ("/integrations/", "/billing/subscriptions/", "/activity/", "/settings/"):
            assert len(banners(page(customer, path))) == 1, path
        traveller.move_to(subscription.expires_at - timedelta(days=6))
        [urgent] = banners(page(customer))
        assert urgent.startswith("error: Your Cloud POS subscription (2 seats) ends in 6 days")
        traveller.move_to(subscription.expires_at - timedelta(hours=1))
        assert "ends today" in banners(page(customer))[0]
        traveller.move_to(subscription.expires_at + timedelta(minutes=1))
        assert banners(page(customer)) == []


def test_the_banner_counts_local_days_and_shows_the_local_end(customer, issue):
    set_time_zone(tenant=customer.account, time_zone="Pacific/Apia", actor=customer.user)
    with time_machine.travel(T0, tick=False) as traveller:
        grant(customer, issue, seats=1, months=1)
        subscription = Subscription.objects.get()  # ends 10 Apr 2027 09:00 UTC = 22:00 in Apia
        traveller.move_to(datetime(2027, 4, 9, 10, 59, tzinfo=UTC))  # 9 Apr 23:59 in Apia
        [notice] = banners(page(customer))
        assert "ends tomorrow" in notice and "10 Apr 2027 22:00 +13" in notice
        traveller.move_to(datetime(2027, 4, 9, 11, 0, tzinfo=UTC))  # 10 Apr 00:00 in Apia
        assert "ends today" in banners(page(customer))[0]
    assert subscription.expires_at == datetime(2027, 4, 10, 9, 0, tzinfo=UTC)


def test_a_renewed_subscription_and_a_renewing_stripe_plan_have_no_banner(customer, issue):
    with time_machine.travel(T0, tick=False) as traveller:
        grant(customer, issue, seats=1, months=1)
        first = Subscription.objects.get()
        Subscription.objects.create(
            account=customer.account,
            product="pos",
            seats=1,
            source=Source.STRIPE,
            stripe_subscription_id="sub_test",
            stripe_item_id="si_test",
            started_at=T0,
            expires_at=first.expires_at - timedelta(days=4),  # 6 days left: urgent
        )
        traveller.move_to(first.expires_at - timedelta(days=10))
        assert len(banners(page(customer))) == 1  # the key subscription only: Stripe renews itself
        Subscription.objects.filter(source=Source.STRIPE).update(cancel_at_period_end=True)
        assert [b.split(" ends ")[0] for b in banners(page(customer))] == [
            "error: Your Cloud POS subscription (1 seat)",
            "warning: Your Cloud POS subscription (1 seat)",
        ]
        Subscription.objects.filter(source=Source.STRIPE).delete()
        [renewal] = issue(seats=1, months=1)
        redeem(customer, renewal, renew=first.pk)  # continues the first: its seats carry on
        assert banners(page(customer)) == []


def test_banners_show_only_the_accounts_own_endings(customer, outsider, teammate, issue):
    with time_machine.travel(T0, tick=False) as traveller:
        grant(customer, issue, seats=1, months=1)
        traveller.move_to(Subscription.objects.get().expires_at - timedelta(days=3))
        assert len(banners(page(customer))) == 1
        assert len(banners(page(teammate))) == 1  # the same account
        assert banners(page(outsider)) == []


# --- certificates expiring ---------------------------------------------------------------------


def test_a_certificate_expiring_within_30_days_is_marked_and_has_a_banner(customer):
    now = datetime.now(UTC)
    certificate(customer.account, "CSOON", now + timedelta(days=12, hours=1))
    certificate(customer.account, "CLATER", now + timedelta(days=45))
    certificate(customer.account, "CGONE", now + timedelta(days=3), status="revoked")
    [notice] = banners(page(customer))
    assert re.match(r"warning: The certificate CSOON \(Acme Retail SA · Store 12\) ends in 1[23] days", notice)
    assert "upload its renewed certificate" in notice
    table = page(customer, "/pos/certificates/")
    marks = re.findall(r'<tr data-uid="(\w+)".*?</tr>', table)
    assert marks == ["CSOON", "CLATER", "CGONE"] or set(marks) == {"CSOON", "CLATER", "CGONE"}
    soon = re.search(r'<tr data-uid="CSOON".*?</tr>', table).group(0)
    assert re.search(r"data-expires-soon>Expires in 1[23] days<", soon)
    for uid in ("CLATER", "CGONE"):
        assert "data-expires-soon" not in re.search(rf'<tr data-uid="{uid}".*?</tr>', table).group(0)


def test_certificate_expiry_e_mails_at_30_7_and_1_local_days_once_each(customer, teammate, mailoutbox):
    ends = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(ends - timedelta(days=40), tick=False) as traveller:
        cert = certificate(customer.account, "CEXP", ends, uploaded_at=ends - timedelta(days=200))
        certificate(customer.account, "CREV", ends, status="revoked")
        assert queue_due_certificate_reminders() == 0
        for days, label in ((30, "30 days"), (7, "7 days"), (1, "1 day")):
            traveller.move_to(ends - timedelta(days=days))
            assert queue_due_certificate_reminders() == 1
            assert send_outbound().sent == 1
            [mail] = mailoutbox
            assert mail.subject == f"Your fiscal certificate CEXP expires in {label}"
            assert mail.to == sorted([customer.user.email, teammate.user.email])
            assert "Acme Retail SA" in mail.body and "1 Jun 2027 12:00 UTC" not in mail.body
            assert "2 Jun 2027 00:00 +12" in mail.body  # the account's zone, Pacific/Fiji
            mailoutbox.clear()
            traveller.shift(timedelta(hours=1))
            assert queue_due_certificate_reminders() == 0 and send_outbound().sent == 0
    keys = OutboundEmail.objects.filter(kind=EmailKind.CERTIFICATE_EXPIRY).values_list("dedupe_key", flat=True)
    assert sorted(keys) == [f"certificate:{cert.pk}:expires-in-{d}d" for d in (1, 30, 7)]


def test_a_certificate_uploaded_with_days_left_is_told_only_the_reminder_due(customer, mailoutbox):
    ends = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(ends - timedelta(days=5), tick=False):
        certificate(customer.account, "CLATE", ends, uploaded_at=ends - timedelta(days=5))
        assert queue_due_certificate_reminders() == 0  # 7 days was already past when it was uploaded
    with time_machine.travel(ends - timedelta(hours=20), tick=False):
        # The hourly job (fiscobridge/jobs.py), as the worker runs it.
        assert queue_and_send_certificate_expiry_reminders.call() == {"queued": 1, "sent": 1, "failed": 0}
        assert mailoutbox[0].subject == "Your fiscal certificate CLATE expires in 1 day"


# --- Integrations: the invoice meter -----------------------------------------------------------


def test_the_connections_table_shows_a_meter_and_warns_at_80_percent(customer):
    connection = create_connection(account=customer.account, actor=None, type="xero", tier="trial", name="Books")
    record_invoice_usage(connection=connection, invoices=39)
    html = page(customer, "/integrations/")
    assert '<meter min="0" max="50" low="40" high="49" optimum="0" value="39"' in html
    assert "39 / 50" in html and "% used" not in html and 'class="alert warning"' not in html
    record_invoice_usage(connection=connection, invoices=1)
    html = page(customer, "/integrations/")
    assert '<span class="chip warn">80 % used</span>' in html
    assert "Trial connections have used 80 % of this month’s invoices</strong> (40 of 50)" in html
    record_invoice_usage(connection=connection, invoices=10)
    html = page(customer, "/integrations/")
    assert "Limit reached" in html and "Trial connections have used all 50 invoices of this month." in html


def test_a_connection_that_may_not_sync_says_why(customer, issue):
    connection = create_connection(account=customer.account, actor=None, type="xero", tier="trial", name="Books")
    grant(customer, issue, product="int", tier="starter", seats=1)
    row = re.search(rf'<tr data-uid="{connection.uid}".*?</tr>', page(customer, "/integrations/")).group(0)
    assert "Not syncing" in row and "The free trial ended when a paid Integrations subscription started" in row
    assert "<meter" not in row


@pytest.mark.parametrize("path", ["/integrations/", "/pos/certificates/"])
def test_the_meter_and_marks_are_not_shown_to_another_account(customer, outsider, path):
    connection = create_connection(account=customer.account, actor=None, type="xero", tier="trial", name="Books")
    record_invoice_usage(connection=connection, invoices=45)
    certificate(customer.account, "CSOON", datetime.now(UTC) + timedelta(days=3))
    html = page(outsider, path)
    assert "CSOON" not in html and connection.uid not in html and "<meter" not in html
    assert banners(page(outsider)) == []
