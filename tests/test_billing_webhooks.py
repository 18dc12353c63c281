"""Stripe webhooks: signatures, storing each event once, order-proof sync, grace and cancellation.

The real `stripe` SDK talks to localstripe through tests/stripe_fake.py; events are signed as
Stripe signs them and delivered to /billing/webhook/.
"""

import json
import time
from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from fiscobridge.audit.models import Event
from fiscobridge.billing.checkout import ensure_stripe_customer
from fiscobridge.billing.models import EventStatus, StripeCustomer, StripeEvent
from fiscobridge.core import clock
from fiscobridge.subscriptions.capacity import int_capacity_by_tier, int_trial, pos_capacity
from fiscobridge.subscriptions.models import Source, Status, Subscription
from tests.factories import buy, start_checkout_page
from tests.stripe_fake import DECLINED_CARD, GOOD_CARD, make_event, post_event, sign

URL = "/billing/webhook/"


def stripe_rows(account):
    return list(Subscription.objects.filter(account=account, source=Source.STRIPE).order_by("id"))


def deliver(event, **options):
    return post_event(Client(), event, **options)


def subscription_event(fake, type_, subscription_id, **overrides):
    obj = fake.subscription(subscription_id)
    obj.update(overrides)
    return make_event(type_, obj)


# --- signatures -------------------------------------------------------------------------------


def test_a_completed_checkout_creates_the_stripe_subscription(stripe_on, customer):
    subscription_id = buy(stripe_on, customer, seats=3, interval="month")
    [row] = stripe_rows(customer.account)
    remote = stripe_on.subscription(subscription_id)
    assert (row.product, row.tier, row.seats, row.billing_interval) == ("pos", "", 3, "month")
    assert row.stripe_subscription_id == subscription_id
    assert row.stripe_item_id == remote["items"]["data"][0]["id"]
    assert int(row.expires_at.timestamp()) == remote["current_period_end"]
    assert row.status == Status.ACTIVE and row.stripe_status == "active" and row.ended_at is None
    assert pos_capacity(customer.account) == 3
    [event] = StripeEvent.objects.all()
    assert (event.type, event.status, event.account, event.attempts) == (
        "checkout.session.completed",
        EventStatus.HANDLED,
        customer.account,
        1,
    )
    assert event.payload["object"] == "checkout.session" and "customer" not in event.payload
    checkout = customer.account.checkout_sessions.get()
    assert checkout.completed_at is not None and checkout.stripe_subscription_id == subscription_id
    actions = set(Event.objects.filter(account=customer.account).values_list("action", flat=True))
    assert {
        "billing.checkout_started",
        "billing.checkout_completed",
        "subscription.created",
        "stripe.event_handled",
    } <= actions


def test_unsigned_payload_is_refused_and_not_stored(stripe_on, customer):
    session_id = start_checkout_page(customer)
    event = stripe_on.complete_checkout(session_id)
    response = Client().post(URL, data=json.dumps(event), content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_webhook"
    assert not StripeEvent.objects.exists() and not stripe_rows(customer.account)


def test_tampered_payload_is_refused(stripe_on, customer):
    session_id = start_checkout_page(customer, seats=1)
    event = stripe_on.complete_checkout(session_id)
    payload = json.dumps(event).encode()
    signature = sign(payload)
    tampered = payload.replace(b'"client_reference_id": "', b'"client_reference_id": "9')
    assert tampered != payload
    response = Client().post(URL, data=tampered, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)
    assert response.status_code == 400
    assert not StripeEvent.objects.exists() and not stripe_rows(customer.account)


def test_stale_signature_is_refused(stripe_on, customer):
    session_id = start_checkout_page(customer)
    event = stripe_on.complete_checkout(session_id)
    response = deliver(event, timestamp=int(time.time()) - 301)  # Stripe's tolerance is 300 s
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()
    # The same event freshly signed is accepted: only the timestamp was wrong.
    assert deliver(event).status_code == 200
    assert pos_capacity(customer.account) == 3


def test_signature_with_another_secret_is_refused(stripe_on, customer):
    session_id = start_checkout_page(customer)
    event = stripe_on.complete_checkout(session_id)
    assert deliver(event, secret="whsec_not_ours").status_code == 400
    assert (
        Client()
        .post(URL, data=b"not json", content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(b"not json"))
        .status_code
        == 400
    )
    assert not StripeEvent.objects.exists()


def test_webhook_is_csrf_exempt_and_post_only(stripe_on, customer):
    session_id = start_checkout_page(customer)
    event = stripe_on.complete_checkout(session_id)
    payload = json.dumps(event).encode()
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(payload))
    assert response.status_code == 200
    assert Client().get(URL).status_code == 405


def test_without_a_webhook_secret_the_endpoint_says_so(settings, customer):
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = json.dumps(make_event("customer.created", {"id": "cus_x", "object": "customer"})).encode()
    response = Client().post(URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(payload))
    assert response.status_code == 503
    assert not StripeEvent.objects.exists()


# --- stored once, applied once ----------------------------------------------------------------------


def test_the_same_event_twice_is_applied_once(stripe_on, customer):
    session_id = start_checkout_page(customer, seats=3)
    event = stripe_on.complete_checkout(session_id)
    assert deliver(event).status_code == 200
    subscription_id = stripe_on.sessions[session_id]["subscription"]
    # Stripe changes in between; a redelivery of the old event must not re-apply anything.
    item = stripe_on.subscription(subscription_id)["items"]["data"][0]["id"]
    stripe_on.stripe().v1.subscriptions.update(subscription_id, {"items": [{"id": item, "quantity": 7}]})
    second = deliver(event)
    assert second.status_code == 200 and second.json()["status"] == "handled"
    [row] = stripe_rows(customer.account)
    assert row.seats == 3
    [stored] = StripeEvent.objects.all()
    assert stored.attempts == 1
    assert Event.objects.filter(action="subscription.created").count() == 1
    assert Event.objects.filter(action="stripe.event_handled").count() == 1


def test_events_we_do_not_act_on_are_stored_as_ignored(stripe_on, customer):
    event = make_event("customer.created", {"id": "cus_123", "object": "customer"})
    response = deliver(event)
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    stored = StripeEvent.objects.get(event_id=event["id"])
    assert stored.status == EventStatus.IGNORED and stored.handled_at is not None
    assert deliver(event).status_code == 200
    assert StripeEvent.objects.count() == 1


# --- order-proof: re-read from Stripe ------------------------------------------------------------


def _subscription_outside_checkout(fake, customer, seats=2, plan="price_pos_monthly"):
    """A subscription created in Stripe directly (as the Customer Portal or dashboard might)."""
    stripe_customer = ensure_stripe_customer(account=customer.account, actor=customer.user)
    fake.add_card(stripe_customer.customer_id)
    created = fake.stripe().v1.subscriptions.create(
        {"customer": stripe_customer.customer_id, "items": [{"plan": plan, "quantity": seats}]}
    )
    return created.id


def test_updated_before_created_gives_one_row(stripe_on, customer):
    subscription_id = _subscription_outside_checkout(stripe_on, customer, seats=2)
    [created] = [
        e for e in stripe_on.events("customer.subscription.created") if e["data"]["object"]["id"] == subscription_id
    ]
    updated = subscription_event(stripe_on, "customer.subscription.updated", subscription_id)
    assert deliver(updated).status_code == 200
    assert deliver(created).status_code == 200
    [row] = stripe_rows(customer.account)
    assert row.seats == 2 and row.status == Status.ACTIVE
    assert Event.objects.filter(action="subscription.created").count() == 1
    assert StripeEvent.objects.filter(status=EventStatus.HANDLED).count() == 2


def test_the_events_copy_is_not_trusted(stripe_on, customer):
    subscription_id = buy(stripe_on, customer, seats=3)
    remote = stripe_on.subscription(subscription_id)
    forged = dict(remote, items={"object": "list", "data": [dict(remote["items"]["data"][0], quantity=99)]})
    assert deliver(make_event("customer.subscription.updated", forged)).status_code == 200
    [row] = stripe_rows(customer.account)
    assert row.seats == 3  # what Stripe says, not what the event carried


def test_a_quantity_change_in_stripe_changes_the_seats(stripe_on, customer):
    subscription_id = buy(stripe_on, customer, seats=3)
    item = stripe_on.subscription(subscription_id)["items"]["data"][0]["id"]
    stripe_on.stripe().v1.subscriptions.update(subscription_id, {"items": [{"id": item, "quantity": 5}]})
    assert deliver(subscription_event(stripe_on, "customer.subscription.updated", subscription_id)).status_code == 200
    [row] = stripe_rows(customer.account)
    assert row.seats == 5 and pos_capacity(customer.account) == 5
    changed = Event.objects.get(action="subscription.changed")
    assert changed.details["seats"] == [3, 5] and changed.target_id == str(row.pk)


def test_cancellation_runs_to_the_end_of_the_paid_period(stripe_on, customer):
    subscription_id = buy(stripe_on, customer, seats=2)
    stripe_on.stripe().v1.subscriptions.update(subscription_id, {"cancel_at_period_end": True})
    assert deliver(subscription_event(stripe_on, "customer.subscription.updated", subscription_id)).status_code == 200
    [row] = stripe_rows(customer.account)
    assert row.cancel_at_period_end and row.ended_at == row.expires_at
    assert row.status == Status.ACTIVE and pos_capacity(customer.account) == 2
    with time_machine.travel(row.expires_at - timedelta(seconds=1), tick=False):
        assert row.status == Status.ACTIVE and pos_capacity(customer.account) == 2
    with time_machine.travel(row.expires_at, tick=False):
        assert row.status == Status.CANCELLED and pos_capacity(customer.account) == 0
    # Stripe ends the subscription at the period end and says so.
    stripe_on.stripe().v1.subscriptions.cancel(subscription_id)
    [deleted] = stripe_on.events("customer.subscription.deleted")
    assert deliver(deleted).status_code == 200
    row.refresh_from_db()
    assert row.stripe_status == "canceled" and row.status == Status.CANCELLED
    assert pos_capacity(customer.account) == 0
    assert Event.objects.filter(action="subscription.ended", target_id=str(row.pk)).exists()


def test_undoing_a_cancellation_keeps_the_subscription_renewing(stripe_on, customer):
    subscription_id = buy(stripe_on, customer, seats=2)
    client = stripe_on.stripe()
    client.v1.subscriptions.update(subscription_id, {"cancel_at_period_end": True})
    deliver(subscription_event(stripe_on, "customer.subscription.updated", subscription_id))
    client.v1.subscriptions.update(subscription_id, {"cancel_at_period_end": False})
    deliver(subscription_event(stripe_on, "customer.subscription.updated", subscription_id))
    [row] = stripe_rows(customer.account)
    assert not row.cancel_at_period_end and row.ended_at is None
    with time_machine.travel(row.expires_at - timedelta(seconds=1), tick=False):
        assert row.status == Status.ACTIVE


def test_past_due_keeps_seats_for_the_grace_period_then_paid_restores_them(stripe_on, customer, settings):
    settings.STRIPE_PAST_DUE_GRACE_DAYS = 7
    subscription_id = buy(stripe_on, customer, seats=2, interval="month")
    client = stripe_on.stripe()
    stripe_customer = StripeCustomer.objects.get(account=customer.account).customer_id
    # The card starts failing; the next invoice (here: a switch to yearly billing) is not paid.
    stripe_on.add_card(stripe_customer, DECLINED_CARD)
    item = stripe_on.subscription(subscription_id)["items"]["data"][0]["id"]
    client.v1.subscriptions.update(
        subscription_id, {"items": [{"id": item, "plan": "price_pos_yearly", "quantity": 2}]}
    )
    remote = stripe_on.subscription(subscription_id)
    assert remote["status"] == "past_due"
    invoice = client.v1.invoices.retrieve(remote["latest_invoice"]).to_dict()
    assert invoice["status"] == "open"

    start = clock.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False):
        assert deliver(make_event("invoice.payment_failed", invoice)).status_code == 200
    [row] = stripe_rows(customer.account)
    assert row.stripe_status == "past_due" and row.past_due_since == start
    assert row.ended_at == start + timedelta(days=7) and row.billing_interval == "year"
    with time_machine.travel(start + timedelta(days=3), tick=False):
        # Stripe retries the payment and fails again: the grace period does not restart.
        assert deliver(make_event("invoice.payment_failed", invoice)).status_code == 200
        row.refresh_from_db()
        assert row.past_due_since == start
    with time_machine.travel(start + timedelta(days=7) - timedelta(seconds=1), tick=False):
        assert row.status == Status.ACTIVE and pos_capacity(customer.account) == 2
    with time_machine.travel(start + timedelta(days=7), tick=False):
        assert row.status == Status.CANCELLED and pos_capacity(customer.account) == 0

    # The customer fixes the card and pays: the seats are back, the grace facts are gone.
    stripe_on.add_card(stripe_customer, GOOD_CARD)
    paid = client.v1.invoices.pay(invoice["id"]).to_dict()
    assert paid["status"] == "paid"
    with time_machine.travel(start + timedelta(days=9), tick=False):
        assert deliver(make_event("invoice.paid", paid)).status_code == 200
        row.refresh_from_db()
        assert row.stripe_status == "active" and row.ended_at is None and row.past_due_since is None
        assert row.status == Status.ACTIVE and pos_capacity(customer.account) == 2


def test_integrations_rows_per_tier_item(stripe_on, customer):
    buy(stripe_on, customer, product="int", tier="growth", seats=2, interval="year")
    assert int_capacity_by_tier(customer.account)["growth"] == 2
    assert int_trial(customer.account) is None
    [row] = stripe_rows(customer.account)
    assert (row.product, row.tier, row.billing_interval) == ("int", "growth", "year")


def test_a_subscription_with_two_tier_items_is_two_rows(stripe_on, customer):
    """localstripe holds one item per subscription; Stripe's two-item answer is served canned."""
    subscription_id = _subscription_outside_checkout(stripe_on, customer, seats=2, plan="price_int_starter_monthly")
    remote = stripe_on.subscription(subscription_id)
    starter = remote["items"]["data"][0]
    growth = dict(starter, id="si_growth_item", plan=dict(starter["plan"], id="price_int_growth_monthly"), quantity=3)
    two_items = dict(remote, items={"object": "list", "data": [starter, growth]})
    stripe_on.answer_next("GET", f"/v1/subscriptions/{subscription_id}", body=two_items)
    assert deliver(make_event("customer.subscription.updated", two_items)).status_code == 200
    rows = stripe_rows(customer.account)
    assert [(r.tier, r.seats, r.stripe_item_id) for r in rows] == [
        ("starter", 2, starter["id"]),
        ("growth", 3, "si_growth_item"),
    ]
    assert int_capacity_by_tier(customer.account) == {"starter": 2, "growth": 3, "scale": 0}
    # The growth item is removed in Stripe: its row ends, the starter row stays.
    assert deliver(subscription_event(stripe_on, "customer.subscription.updated", subscription_id)).status_code == 200
    growth_row = Subscription.objects.get(stripe_item_id="si_growth_item")
    assert growth_row.status == Status.CANCELLED
    assert int_capacity_by_tier(customer.account) == {"starter": 2, "growth": 0, "scale": 0}


# --- failures are stored, and a redelivery applies them -----------------------------------------


def test_stripe_unreachable_while_handling_stores_a_failure_and_a_redelivery_applies_it(stripe_on, customer):
    session_id = start_checkout_page(customer, seats=4)
    event = stripe_on.complete_checkout(session_id)
    stripe_on.fail_next("GET", r"/v1/subscriptions/\w+")
    response = deliver(event)
    assert response.status_code == 500
    stored = StripeEvent.objects.get(event_id=event["id"])
    assert stored.status == EventStatus.FAILED and stored.attempts == 1 and "stripe_unavailable" in stored.error
    assert not stripe_rows(customer.account)  # nothing partial
    assert customer.account.checkout_sessions.get().completed_at is None
    assert Event.objects.filter(action="stripe.event_failed").exists()
    assert deliver(event).status_code == 200
    stored.refresh_from_db()
    assert stored.status == EventStatus.HANDLED and stored.attempts == 2 and stored.error == ""
    assert pos_capacity(customer.account) == 4


def test_unknown_customers_are_ignored_and_unknown_prices_fail_until_configured(stripe_on, customer, settings):
    stranger = stripe_on.stripe().v1.customers.create({"email": "x@example.com"}).id
    stripe_on.add_card(stranger)
    foreign = stripe_on.stripe().v1.subscriptions.create(
        {"customer": stranger, "items": [{"plan": "price_pos_monthly", "quantity": 1}]}
    )
    response = deliver(subscription_event(stripe_on, "customer.subscription.created", foreign.id))
    # Not a customer of this server (the Stripe account may serve others): ignored, not retried.
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert "Unknown Stripe customer" in StripeEvent.objects.get().error
    assert not Subscription.objects.filter(source=Source.STRIPE).exists()

    settings.STRIPE_PRICE_POS_MONTHLY = ""  # a price this server does not sell
    subscription_id = _subscription_outside_checkout(stripe_on, customer)
    event = subscription_event(stripe_on, "customer.subscription.created", subscription_id)
    assert deliver(event).status_code == 500
    assert "Unknown Stripe price price_pos_monthly" in StripeEvent.objects.get(event_id=event["id"]).error
    assert not stripe_rows(customer.account)
    settings.STRIPE_PRICE_POS_MONTHLY = "price_pos_monthly"  # fixed: Stripe's next delivery applies it
    assert deliver(event).status_code == 200
    assert [row.seats for row in stripe_rows(customer.account)] == [2]


def test_another_accounts_checkout_cannot_be_claimed(stripe_on, customer, outsider):
    """A completed session whose Stripe customer belongs to another account is refused."""
    session_id = start_checkout_page(customer, seats=2)
    outsider_customer = ensure_stripe_customer(account=outsider.account, actor=outsider.user)
    stripe_on.sessions[session_id]["customer"] = outsider_customer.customer_id
    event = stripe_on.complete_checkout(session_id)
    assert deliver(event).status_code == 500
    assert "another account" in StripeEvent.objects.get().error
    assert not Subscription.objects.filter(source=Source.STRIPE).exists()


@pytest.mark.parametrize("status", ["incomplete", "incomplete_expired"])
def test_a_never_paid_subscription_grants_nothing(stripe_on, customer, status):
    subscription_id = _subscription_outside_checkout(stripe_on, customer)
    unpaid = dict(stripe_on.subscription(subscription_id), status=status)
    stripe_on.answer_next("GET", f"/v1/subscriptions/{subscription_id}", body=unpaid)
    assert deliver(make_event("customer.subscription.created", unpaid)).status_code == 200
    assert not stripe_rows(customer.account) and pos_capacity(customer.account) == 0


def test_billing_sync_command_catches_up_after_missed_webhooks(stripe_on, customer, outsider):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    subscription_id = buy(stripe_on, customer, seats=3)
    other_id = buy(stripe_on, outsider, seats=1)
    item = stripe_on.subscription(subscription_id)["items"]["data"][0]["id"]
    stripe_on.stripe().v1.subscriptions.update(subscription_id, {"items": [{"id": item, "quantity": 6}]})
    stripe_on.stripe().v1.subscriptions.cancel(other_id)  # no webhook reaches us for either
    out = StringIO()
    call_command("billing_sync", stdout=out)
    assert "2 Stripe subscriptions synced" in out.getvalue()
    assert pos_capacity(customer.account) == 6 and pos_capacity(outsider.account) == 0
    # One subscription Stripe cannot find does not stop the others, and the command says so.
    stripe_on.fail_next(
        "GET",
        f"/v1/subscriptions/{subscription_id}",
        status=404,
        error={"type": "invalid_request_error", "message": "No such subscription"},
    )
    out = StringIO()
    with pytest.raises(CommandError, match="1 could not be synced"):
        call_command("billing_sync", stdout=out)
    assert f"FAILED {subscription_id}" in out.getvalue() and f"synced {other_id}" in out.getvalue()
