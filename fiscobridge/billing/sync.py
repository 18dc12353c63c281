"""The Stripe sync: Stripe's subscription → our subscription rows.

Stripe is the source of truth for `stripe` subscriptions. We never apply the copy of an object
that an event carries: the sync re-reads the subscription from Stripe while holding the
account's row lock, so events may arrive twice, late or in any order and the rows still end up
saying what Stripe says now. Status stays derived (SPEC 3): the sync only stores dates
(`expires_at` = end of the paid period, `ended_at` = when seats stop early) and Stripe's facts.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction

from fiscobridge.accounts.locks import lock_account
from fiscobridge.audit.services import record_event
from fiscobridge.billing import stripe_gateway as gateway
from fiscobridge.billing.config import plan_for_price
from fiscobridge.billing.errors import (
    ForeignCustomer,
    WebhookNotUnderstood,
)
from fiscobridge.billing.models import StripeCustomer
from fiscobridge.core import clock
from fiscobridge.core.errors import DomainError
from fiscobridge.subscriptions.models import Source, Subscription
from fiscobridge.subscriptions.services import record_subscription_created

# Stripe statuses in which an unpaid invoice keeps the seats only for the grace period.
PAST_DUE_STATUSES = {"past_due", "unpaid", "incomplete"}
# A subscription whose first payment never went through grants nothing: no row is created.
NEVER_PAID_STATUSES = {"incomplete", "incomplete_expired"}
ENDED_STATUSES = {"canceled", "incomplete_expired"}
CHANGEABLE_STATUSES = {"active", "trialing"}


def stripe_customer_for(customer_id: str) -> StripeCustomer:
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
    customer = stripe_customer_for(customer_id)
    with transaction.atomic():
        lock_account(customer.account)
        remote = gateway.retrieve_subscription(subscription_id)
        if remote.customer_id != customer.customer_id:
            raise WebhookNotUnderstood("The subscription belongs to another Stripe customer")
        return apply_remote_subscription(account=customer.account, remote=remote, actor=actor, ip=ip)


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


AUDITED_FIELDS = [
    "product",
    "tier",
    "seats",
    "billing_interval",
    "stripe_status",
    "cancel_at_period_end",
    "expires_at",
    "ended_at",
]


def _audit_value(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


def apply_remote_subscription(*, account, remote: gateway.RemoteSubscription, actor, ip) -> list[Subscription]:
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
            "product": plan.product,
            "tier": plan.tier,
            "seats": item.quantity,
            "stripe_item_id": item.id,
            "stripe_price_id": item.price_id,
            "billing_interval": plan.interval,
            "stripe_status": remote.status,
            "cancel_at_period_end": remote.cancel_at_period_end,
            "expires_at": item.current_period_end,
            "ended_at": ended_at,
            "ended_reason": reason,
            "past_due_since": past_due_since,
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
            _update_row(
                row,
                {"ended_at": now, "ended_reason": "Removed from the subscription in Stripe"},
                actor=actor,
                ip=ip,
                now=now,
            )
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
        account=account,
        source=Source.STRIPE,
        stripe_subscription_id=remote.id,
        started_at=min(remote.start_date or clock.now(), period_end - timedelta(seconds=1)),
        **facts,
    )
    record_subscription_created(
        subscription=row, actor=actor, ip=ip, interval=row.billing_interval, stripe_subscription=remote.id
    )
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
    record_event(
        action="subscription.ended" if ended_now else "subscription.changed",
        actor=actor,
        account=row.account,
        target=row,
        ip=ip,
        details=details,
    )


def resync_all(*, stdout=None) -> tuple[int, int]:
    """Re-read every known Stripe subscription (after an outage of the webhook endpoint).

    Returns (synced, failed); one subscription that fails does not stop the others.
    """
    ids = (
        Subscription.objects.filter(source=Source.STRIPE)
        .values_list("stripe_subscription_id", flat=True)
        .distinct()
        .order_by("stripe_subscription_id")
    )
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
