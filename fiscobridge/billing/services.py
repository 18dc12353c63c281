"""Every billing change: checkout, Customer Portal, seat changes, webhooks and the Stripe sync.

Stripe is the source of truth for `stripe` subscriptions. We never apply the copy of an object
that an event carries: the sync re-reads the subscription from Stripe while holding the
account's row lock, so events may arrive twice, late or in any order and the rows still end up
saying what Stripe says now. Status stays derived (SPEC 3): the sync only stores dates
(`expires_at` = end of the paid period, `ended_at` = when seats stop early) and Stripe's facts.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse

from fiscobridge.accounts.locks import lock_account
from fiscobridge.audit.services import record_event
from fiscobridge.billing import stripe_gateway as gateway
from fiscobridge.billing.config import MAX_SEATS, find_plan, plan_for_price, stripe_enabled
from fiscobridge.billing.errors import (
    BillingNotConfigured,
    ForeignCustomer,
    InvalidSeats,
    NoStripeCustomer,
    PlanNotAvailable,
    SeatsInUse,
    SubscriptionNotChangeable,
    WebhookNotUnderstood,
)
from fiscobridge.billing.models import CheckoutSession, EventStatus, StripeCustomer, StripeEvent
from fiscobridge.core import clock
from fiscobridge.core.errors import DomainError, NotFound
from fiscobridge.integrations.usage import active_connections_by_tier
from fiscobridge.pos.usage import active_certificate_count
from fiscobridge.subscriptions.capacity import int_capacity_by_tier, pos_capacity
from fiscobridge.subscriptions.models import Product, Source, Status, Subscription

logger = logging.getLogger(__name__)

# Stripe statuses in which an unpaid invoice keeps the seats only for the grace period.
PAST_DUE_STATUSES = {"past_due", "unpaid", "incomplete"}
# A subscription whose first payment never went through grants nothing: no row is created.
NEVER_PAID_STATUSES = {"incomplete", "incomplete_expired"}
ENDED_STATUSES = {"canceled", "incomplete_expired"}
CHANGEABLE_STATUSES = {"active", "trialing"}


def _public_url(name: str) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse(name)


def _valid_seats(seats) -> int:
    try:
        value = int(seats)
    except (TypeError, ValueError):
        raise InvalidSeats() from None
    if not 1 <= value <= MAX_SEATS:
        raise InvalidSeats()
    return value


# --- Customer and Checkout -------------------------------------------------------------------

def ensure_stripe_customer(*, account, actor) -> StripeCustomer:
    """The account's Stripe customer, created on first use (under the account lock: one per account)."""
    existing = StripeCustomer.objects.filter(account=account).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        lock_account(account)
        existing = StripeCustomer.objects.filter(account=account).first()
        if existing is not None:
            return existing
        customer_id = gateway.create_customer(name=account.name, email=actor.email, account_id=account.pk)
        customer = StripeCustomer.objects.create(account=account, customer_id=customer_id)
        record_event(action="billing.customer.created", actor=actor, account=account, target=customer)
    return customer


@dataclass(frozen=True)
class StartedCheckout:
    checkout: CheckoutSession
    url: str  # Stripe's hosted Checkout page: the browser goes there next


def start_checkout(*, account, actor, product: str, tier: str, seats, interval: str, ip=None) -> StartedCheckout:
    """Create a Stripe Checkout Session (subscription mode, quantity = seats) for this account.

    Nothing is granted here: seats arrive with the webhooks once Stripe has taken the payment.
    """
    if not stripe_enabled():
        raise BillingNotConfigured()
    seats = _valid_seats(seats)
    tier = "" if product == Product.POS else tier
    plan = find_plan(product=product, tier=tier, interval=interval)
    if plan is None:
        raise PlanNotAvailable()
    customer = ensure_stripe_customer(account=account, actor=actor)
    metadata = {"account_id": str(account.pk), "product": product, "tier": tier, "interval": interval}
    remote = gateway.create_checkout_session(
        customer_id=customer.customer_id, price_id=plan.price_id, quantity=seats, account_id=account.pk,
        metadata=metadata,
        # Stripe fills in {CHECKOUT_SESSION_ID}; the success page finds the session by it.
        success_url=_public_url("billing_checkout_success") + "?session_id={CHECKOUT_SESSION_ID}",
        cancel_url=_public_url("billing_checkout_cancelled") + f"?product={product}",
    )
    checkout = CheckoutSession.objects.create(
        session_id=remote.id, account=account, started_by=actor if getattr(actor, "pk", None) else None,
        product=product, tier=tier, seats=seats, interval=interval, price_id=plan.price_id,
    )
    record_event(action="billing.checkout.started", actor=actor, account=account, target=checkout, ip=ip,
                 details={"product": product, "tier": tier, "seats": seats, "interval": interval})
    return StartedCheckout(checkout=checkout, url=remote.url)


def open_customer_portal(*, account, actor, ip=None) -> str:
    """A Stripe Customer Portal session for the account's own customer; returns its URL."""
    if not stripe_enabled():
        raise BillingNotConfigured()
    customer = StripeCustomer.objects.filter(account=account).first()
    if customer is None:
        raise NoStripeCustomer()
    url = gateway.create_portal_session(customer_id=customer.customer_id, return_url=_public_url("subscriptions"))
    record_event(action="billing.portal.opened", actor=actor, account=account, target=customer, ip=ip)
    return url


# --- Seat changes ------------------------------------------------------------------------------

def _seats_in_use(account, product: str, tier: str) -> tuple[int, int]:
    """(used, total) seats of the product (and Integrations tier) across every active subscription."""
    if product == Product.POS:
        return active_certificate_count(account), pos_capacity(account)
    return active_connections_by_tier(account).get(tier, 0), int_capacity_by_tier(account).get(tier, 0)


def change_stripe_seats(*, account, subscription: Subscription, seats, actor, ip=None) -> Subscription:
    """Set the quantity of a Stripe subscription item, with proration.

    Refused below the seats in use. The account lock is held across the Stripe call, so no
    certificate upload or connection can take a seat between the check and the change; if Stripe
    refuses or cannot be reached, the transaction rolls back and nothing has changed anywhere.
    An increase is invoiced at once and must be paid (`error_if_incomplete`: a declined card
    leaves the subscription as it was); a decrease is credited on the next invoice.
    """
    if not stripe_enabled():
        raise BillingNotConfigured()
    seats = _valid_seats(seats)
    with transaction.atomic():
        lock_account(account)
        row = Subscription.objects.filter(pk=subscription.pk, account=account, source=Source.STRIPE).first()
        if row is None:
            raise NotFound()
        if row.stripe_status in PAST_DUE_STATUSES:
            raise SubscriptionNotChangeable(
                "This subscription has an unpaid invoice. Pay it with Manage in Stripe, then change the seats."
            )
        if row.status != Status.ACTIVE or row.stripe_status not in CHANGEABLE_STATUSES:
            raise SubscriptionNotChangeable()
        if seats == row.seats:
            return row
        if seats < row.seats:
            used, total = _seats_in_use(account, row.product, row.tier)
            minimum = used - (total - row.seats)  # what this row must keep so that used <= total
            if seats < minimum:
                raise SeatsInUse(in_use=used, minimum=minimum)
        increase = seats > row.seats
        remote = gateway.update_item_quantity(
            subscription_id=row.stripe_subscription_id, item_id=row.stripe_item_id, quantity=seats,
            proration_behavior="always_invoice" if increase else "create_prorations",
            payment_behavior="error_if_incomplete" if increase else "allow_incomplete",
        )
        _apply_remote(account=account, remote=remote, actor=actor, ip=ip)
        row.refresh_from_db()
    return row


# --- The sync: Stripe's subscription → our rows -----------------------------------------------------

def _customer_for(customer_id: str) -> StripeCustomer:
    customer = StripeCustomer.objects.select_related("account").filter(customer_id=customer_id).first()
    if customer is None:
        raise ForeignCustomer(f"Unknown Stripe customer {customer_id or '(none)'}")
    return customer


def sync_stripe_subscription(*, subscription_id: str, customer_id: str = "", actor=None, ip=None) -> list[Subscription]:
    """Re-read one Stripe subscription and make its rows say what Stripe says. Idempotent.

    `customer_id` (from the event) only picks the account to lock; the subscription is read from
    Stripe after the lock is taken, so two handlers of the same subscription apply in turn and
    the later one applies the later state.
    """
    if not customer_id:
        customer_id = gateway.retrieve_subscription(subscription_id).customer_id
    customer = _customer_for(customer_id)
    with transaction.atomic():
        lock_account(customer.account)
        remote = gateway.retrieve_subscription(subscription_id)
        if remote.customer_id != customer.customer_id:
            raise WebhookNotUnderstood("The subscription belongs to another Stripe customer")
        return _apply_remote(account=customer.account, remote=remote, actor=actor, ip=ip)


def _ending(remote: gateway.RemoteSubscription, row: Subscription | None, period_end, now):
    """(ended_at, ended_reason, past_due_since) for what Stripe says about the subscription."""
    status = remote.status
    if status in ENDED_STATUSES:
        return remote.ended_at or remote.canceled_at or now, "Cancelled in Stripe", None
    if status in PAST_DUE_STATUSES:
        since = row.past_due_since if row is not None and row.past_due_since else now
        return since + timedelta(days=settings.STRIPE_PAST_DUE_GRACE_DAYS), "Payment past due", since
    if status == "paused":
        kept = row.ended_at if row is not None and row.ended_reason == "Paused in Stripe" and row.ended_at else now
        return kept, "Paused in Stripe", None
    if remote.cancel_at_period_end:
        return period_end, "Cancelled in Stripe: ends with the paid period", None
    if remote.cancel_at:
        return remote.cancel_at, "Cancelled in Stripe: ends on the chosen date", None
    return None, "", None


AUDITED_FIELDS = ["product", "tier", "seats", "billing_interval", "stripe_status", "cancel_at_period_end",
                  "expires_at", "ended_at"]


def _audit_value(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def _apply_remote(*, account, remote: gateway.RemoteSubscription, actor, ip) -> list[Subscription]:
    """Create, update or end the rows of one Stripe subscription. Runs under the account lock."""
    now = clock.now()
    rows = list(Subscription.objects.filter(source=Source.STRIPE, stripe_subscription_id=remote.id).order_by("id"))
    if any(row.account_id != account.pk for row in rows):
        raise WebhookNotUnderstood("The subscription is recorded for another account")
    live_items = [item for item in remote.items if item.quantity >= 1]
    plans = {item.id: plan_for_price(item.price_id) for item in live_items}
    unknown = [item.price_id for item in live_items if plans[item.id] is None]
    if unknown:  # before any write: an unknown price leaves every row as it was
        raise WebhookNotUnderstood(f"Unknown Stripe price {unknown[0]}: set it in the STRIPE_PRICE_* settings")
    by_item = {row.stripe_item_id: row for row in rows}
    live_ids = {item.id for item in live_items}
    orphans = [row for row in rows if row.stripe_item_id not in live_ids]
    new_items = [item for item in live_items if item.id not in by_item]
    result = []
    for item in live_items:
        plan = plans[item.id]
        row = by_item.get(item.id) or _replaced_row(item, plan, orphans, new_items)
        ended_at, reason, past_due_since = _ending(remote, row, item.current_period_end, now)
        facts = {
            "product": plan.product, "tier": plan.tier, "seats": item.quantity, "stripe_item_id": item.id,
            "stripe_price_id": item.price_id, "billing_interval": plan.interval, "stripe_status": remote.status,
            "cancel_at_period_end": remote.cancel_at_period_end, "expires_at": item.current_period_end,
            "ended_at": ended_at, "ended_reason": reason, "past_due_since": past_due_since,
        }
        if row is not None:
            _update_row(row, facts, actor=actor, ip=ip, now=now)
        elif remote.status in NEVER_PAID_STATUSES:
            continue
        else:
            row = _create_row(account=account, remote=remote, facts=facts, actor=actor, ip=ip)
        result.append(row)
    for row in orphans:
        if row.ended_at is None or row.ended_at > now:
            _update_row(row, {"ended_at": now, "ended_reason": "Removed from the subscription in Stripe"},
                        actor=actor, ip=ip, now=now)
        result.append(row)
    return result


def _replaced_row(item, plan, orphans: list[Subscription], new_items) -> Subscription | None:
    """The row of an item that a new item replaced (taken out of `orphans`), if any.

    A plan switch may be done as delete + add, and some servers replace the item on a quantity
    change: that is the same seats, so the row follows the new item of the same price, or the only
    new item of the same product.
    """
    row = next((r for r in orphans if r.stripe_price_id == item.price_id), None)
    if row is None and len(orphans) == 1 and len(new_items) == 1 and orphans[0].product == plan.product:
        row = orphans[0]
    if row is not None:
        orphans.remove(row)
    return row


def _create_row(*, account, remote: gateway.RemoteSubscription, facts: dict, actor, ip) -> Subscription:
    period_end = facts["expires_at"]
    row = Subscription.objects.create(
        account=account, source=Source.STRIPE, stripe_subscription_id=remote.id,
        started_at=min(remote.start_date or clock.now(), period_end - timedelta(seconds=1)), **facts,
    )
    record_event(action="subscription.created", actor=actor, account=account, target=row, ip=ip, details={
        "product": row.product, "tier": row.tier, "seats": row.seats, "source": "stripe",
        "interval": row.billing_interval, "stripe_subscription": remote.id,
        "starts_at": row.started_at.isoformat(), "expires_at": row.expires_at.isoformat(),
    })
    return row


def _update_row(row: Subscription, facts: dict, *, actor, ip, now) -> None:
    changed = {name: value for name, value in facts.items() if getattr(row, name) != value}
    if not changed:
        return
    before = {name: getattr(row, name) for name in AUDITED_FIELDS if name in changed}
    for name, value in changed.items():
        setattr(row, name, value)
    row.save(update_fields=list(changed))
    ended_now = "ended_at" in changed and row.ended_at is not None and row.ended_at <= now
    details = {name: [_audit_value(before[name]), _audit_value(getattr(row, name))] for name in before}
    details["stripe_subscription"] = row.stripe_subscription_id
    if ended_now:
        details["reason"] = row.ended_reason
    record_event(action="subscription.ended" if ended_now else "subscription.changed", actor=actor,
                 account=row.account, target=row, ip=ip, details=details)


def _checkout_completed(obj: dict):
    remote = gateway.retrieve_checkout_session(obj["id"])
    customer = _customer_for(remote.customer_id)
    with transaction.atomic():
        lock_account(customer.account)
        local = CheckoutSession.objects.filter(session_id=remote.id).first()
        if local is not None and local.account_id != customer.account_id:
            raise WebhookNotUnderstood("The checkout session was started by another account")
        if local is not None and remote.status == "complete" and local.completed_at is None:
            local.completed_at = clock.now()
            local.stripe_subscription_id = remote.subscription_id
            local.save(update_fields=["completed_at", "stripe_subscription_id"])
            record_event(action="billing.checkout.completed", account=customer.account, target=local,
                         details={"stripe_subscription": remote.subscription_id})
        if remote.subscription_id:
            sync_stripe_subscription(subscription_id=remote.subscription_id, customer_id=customer.customer_id)
    return customer.account


def _subscription_changed(obj: dict):
    customer = _customer_for(gateway.object_id(obj.get("customer")))
    sync_stripe_subscription(subscription_id=obj["id"], customer_id=customer.customer_id)
    return customer.account


def _invoice_changed(obj: dict):
    subscription_id = gateway.invoice_subscription_id(obj)
    customer_id = gateway.object_id(obj.get("customer"))
    if not subscription_id:
        return None  # a one-off invoice: nothing to sync
    customer = _customer_for(customer_id)
    sync_stripe_subscription(subscription_id=subscription_id, customer_id=customer.customer_id)
    return customer.account


HANDLERS = {
    "checkout.session.completed": _checkout_completed,
    "checkout.session.async_payment_succeeded": _checkout_completed,
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_changed,
    "customer.subscription.paused": _subscription_changed,
    "customer.subscription.resumed": _subscription_changed,
    "invoice.paid": _invoice_changed,
    "invoice.payment_succeeded": _invoice_changed,
    "invoice.payment_failed": _invoice_changed,
}
DONE = {EventStatus.HANDLED, EventStatus.IGNORED}


class WebhookHandlingFailed(Exception):
    """The event is stored as failed; answer non-2xx so that Stripe delivers it again."""

    def __init__(self, event: StripeEvent):
        self.event = event
        super().__init__(event.error)


def handle_webhook(*, payload: bytes, signature: str | None) -> StripeEvent:
    """Verify, store once by id, and apply a Stripe event. A handled event is never applied again."""
    data = gateway.construct_event(payload=payload, signature=signature)
    obj = (data.get("data") or {}).get("object") or {}
    created = data.get("created")
    record, _ = StripeEvent.objects.get_or_create(event_id=data["id"], defaults={
        "type": data["type"][:100],
        "payload": {"object": obj.get("object"), "object_id": obj.get("id"), "livemode": data.get("livemode"),
                    "api_version": data.get("api_version")},
        "created_in_stripe_at": gateway.from_timestamp(created) if isinstance(created, int) else None,
    })
    if record.status in DONE:
        return record
    handler = HANDLERS.get(record.type)
    try:
        with transaction.atomic():
            # Two deliveries of one event at once: the second waits here, then sees it done.
            record = StripeEvent.objects.select_for_update().get(pk=record.pk)
            if record.status in DONE:
                return record
            account, reason = None, ""
            try:
                account = handler(obj) if handler is not None else None
            except ForeignCustomer as error:
                handler, reason = None, error.message  # not ours: nothing to apply, nothing to retry
            record.status = EventStatus.HANDLED if handler is not None else EventStatus.IGNORED
            record.account = account
            record.error = reason
            record.attempts += 1
            record.handled_at = clock.now()
            record.save()
            if handler is not None:
                record_event(action="stripe.event.handled", account=account, target=record,
                             details={"event_id": record.event_id, "type": record.type})
        return record
    except Exception as error:
        message = f"{getattr(error, 'code', type(error).__name__)}: {error}"[:2000]
        logger.warning("stripe event %s (%s) failed: %s", record.event_id, record.type, message)
        StripeEvent.objects.filter(pk=record.pk).update(
            status=EventStatus.FAILED, error=message, attempts=F("attempts") + 1,
        )
        record.refresh_from_db()
        record_event(action="stripe.event.failed", target=record,
                     details={"event_id": record.event_id, "type": record.type,
                              "error": getattr(error, "code", type(error).__name__)})
        raise WebhookHandlingFailed(record) from error


def resync_all(*, stdout=None) -> tuple[int, int]:
    """Re-read every known Stripe subscription (after an outage of the webhook endpoint).

    Returns (synced, failed); one subscription that fails does not stop the others.
    """
    ids = (Subscription.objects.filter(source=Source.STRIPE).values_list("stripe_subscription_id", flat=True)
           .distinct().order_by("stripe_subscription_id"))
    synced = failed = 0
    for subscription_id in ids:
        try:
            sync_stripe_subscription(subscription_id=subscription_id)
        except DomainError as error:
            failed += 1
            if stdout is not None:
                stdout.write(f"FAILED {subscription_id}: {error.message}\n")
            continue
        synced += 1
        if stdout is not None:
            stdout.write(f"synced {subscription_id}\n")
    return synced, failed
