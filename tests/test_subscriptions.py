"""Subscriptions (SPEC 3, 2.7): calendar months, derived status, renewal, capacity, void."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from fiscobridge.core.clock import add_months
from fiscobridge.keys.models import ActivationKey
from fiscobridge.keys.services import void_key
from fiscobridge.subscriptions.models import Subscription
from tests.factories import activate, run_tasks, validate


def utc(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    "start, months, end",
    [
        (utc(2027, 1, 31, 9, 30), 1, utc(2027, 2, 28, 9, 30)),
        (utc(2028, 1, 31, 9, 30), 1, utc(2028, 2, 29, 9, 30)),  # leap year
        (utc(2027, 3, 31), 1, utc(2027, 4, 30)),
        (utc(2027, 8, 31), 6, utc(2028, 2, 29)),
        (utc(2027, 12, 15, 23, 59, 59), 1, utc(2028, 1, 15, 23, 59, 59)),
        (utc(2027, 5, 10), 12, utc(2028, 5, 10)),
        (utc(2027, 5, 10), 60, utc(2032, 5, 10)),
        (utc(2028, 2, 29), 12, utc(2029, 2, 28)),
    ],
)
def test_calendar_months_clamp_to_the_month_end(start, months, end):
    assert add_months(start, months) == end


def test_status_is_derived_from_dates(customer, issue):
    [code] = issue(months=1)
    with time_machine.travel("2027-01-31 08:00:00Z", tick=False) as clock:
        sub = activate(customer, code).json()["subscription"]
        assert sub["status"] == "active"
        clock.move_to("2027-02-28 07:59:59Z")
        assert customer.client.get("/api/v1/subscriptions").json()["pos"]["seats_total"] == 2
        clock.move_to("2027-02-28 08:00:00Z")
        summary = customer.client.get("/api/v1/subscriptions").json()["pos"]
        assert summary["seats_total"] == 0
        assert summary["subscriptions"][0]["status"] == "expired"


def test_renewal_starts_when_the_current_subscription_ends(customer, issue):
    [first] = issue(months=12, seats=3)
    [second] = issue(months=6, seats=3)
    with time_machine.travel("2027-01-31 10:00:00Z", tick=False) as clock:
        current = activate(customer, first).json()["subscription"]
        clock.shift(timedelta(days=100))
        preview = validate(customer, second).json()
        assert preview["renewal_options"] == [
            {
                "subscription_id": current["id"],
                "current_expires_at": current["expires_at"],
                "starts_at": current["expires_at"],
                "expires_at": "2028-07-31T10:00:00Z",
            }
        ]
        renewed = activate(customer, second, renew=current["id"]).json()["subscription"]
        assert renewed["status"] == "scheduled"
        assert renewed["started_at"] == current["expires_at"]  # no prepaid day lost
        assert renewed["expires_at"] == "2028-07-31T10:00:00Z"
        # Scheduled seats do not count yet.
        assert customer.client.get("/api/v1/subscriptions").json()["pos"]["seats_total"] == 3
        clock.move_to("2028-01-31 10:00:00Z")
        summary = customer.client.get("/api/v1/subscriptions").json()["pos"]
        assert summary["seats_total"] == 3
        assert {s["id"]: s["status"] for s in summary["subscriptions"]} == {
            current["id"]: "expired",
            renewed["id"]: "active",
        }


def test_a_renewal_can_itself_be_renewed_but_a_subscription_only_once(customer, issue):
    first, second, third, fourth = issue(months=1, quantity=4)
    with time_machine.travel("2027-06-01 00:00:00Z", tick=False):
        sub1 = activate(customer, first).json()["subscription"]
        sub2 = activate(customer, second, renew=sub1["id"]).json()["subscription"]
        options = [o["subscription_id"] for o in validate(customer, third).json()["renewal_options"]]
        assert options == [sub2["id"]]
        response = activate(customer, third, renew=sub1["id"])
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_renewal"
        assert ActivationKey.objects.filter(status="available").count() == 2  # nothing half-written
        sub3 = activate(customer, third, renew=sub2["id"]).json()["subscription"]
        assert sub3["started_at"] == sub2["expires_at"] == "2027-08-01T00:00:00Z"
        assert sub3["expires_at"] == "2027-09-01T00:00:00Z"


def test_renewal_only_of_the_same_product_and_tier(customer, outsider, issue):
    [pos] = issue()
    [starter, growth, starter2] = (
        issue(product="int", tier="starter")
        + issue(product="int", tier="growth")
        + issue(product="int", tier="starter")
    )
    pos_sub = activate(customer, pos).json()["subscription"]
    starter_sub = activate(customer, starter, product="int").json()["subscription"]
    assert validate(customer, growth, product="int").json()["renewal_options"] == []
    assert [o["subscription_id"] for o in validate(customer, starter2, product="int").json()["renewal_options"]] == [
        starter_sub["id"]
    ]
    for bad in (pos_sub["id"], 999999):
        response = activate(customer, growth, product="int", renew=bad)
        assert response.json()["error"]["code"] == "invalid_renewal"
    # Another account's subscription cannot be renewed either, and the key stays available.
    [other] = issue()
    response = activate(outsider, other, renew=pos_sub["id"])
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_renewal"
    assert ActivationKey.objects.filter(status="available").count() == 3


def test_void_ends_the_subscription_at_once(customer, staff, issue):
    [code] = issue(seats=5)
    activate(customer, code)
    key = ActivationKey.objects.get()
    void_key(key=key, reason="chargeback", actor=staff.user)
    summary = customer.client.get("/api/v1/subscriptions").json()["pos"]
    assert summary["seats_total"] == 0
    assert summary["subscriptions"][0]["status"] == "cancelled"
    sub = Subscription.objects.get()
    assert sub.ended_reason == "key voided: chargeback"
    key.refresh_from_db()
    assert key.display_status == "voided"
    # A voided key is not "already active" on the account, and never redeemable again.
    response = activate(customer, code)
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_available"


def test_only_an_activated_key_can_be_voided_once(customer, staff, issue):
    from fiscobridge.keys.errors import KeyNotVoidable

    [code] = issue()
    key = ActivationKey.objects.get()
    with pytest.raises(KeyNotVoidable):
        void_key(key=key, reason="fraud", actor=staff.user)
    activate(customer, code)
    void_key(key=key, reason="fraud", actor=staff.user)
    with pytest.raises(KeyNotVoidable):
        void_key(key=key, reason="fraud", actor=staff.user)


def test_seats_used_count_active_certificates_and_connections(customer, issue):
    from fiscobridge.integrations.models import Connection
    from fiscobridge.pos.models import Certificate

    [code] = issue(seats=3)
    activate(customer, code)
    now = datetime.now(UTC)
    for i, status in enumerate(["active", "active", "revoked"]):
        Certificate.objects.create(
            account=customer.account,
            uid=f"c{i}",
            serial=str(i),
            fingerprint=f"f{i}",
            not_before=now,
            not_after=now + timedelta(days=90),
            status=status,
            revoked_at=now if status == "revoked" else None,
        )
    Connection.objects.create(account=customer.account, uid="k1", type="xero", tier="trial", name="Books")
    summary = customer.client.get("/api/v1/subscriptions").json()
    assert summary["pos"]["seats_used"] == 2
    assert summary["int"]["trial"]["seats_used"] == 1


def test_void_tells_the_customer_and_the_partner(customer, reseller, staff, issue, mailoutbox):
    [code] = issue(seats=2)
    activate(customer, code)
    run_tasks()
    mailoutbox.clear()
    void_key(key=ActivationKey.objects.get(), reason="chargeback", actor=staff.user)
    run_tasks()
    recipients = {address for mail in mailoutbox for address in mail.to}
    assert {customer.user.email, reseller.user.email} <= recipients
    assert all(code not in mail.body and code[4:] not in mail.body for mail in mailoutbox)
