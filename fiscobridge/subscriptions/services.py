"""Creating, scheduling and ending subscriptions."""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.subscriptions.models import Source, Subscription

# At most this many renewal options are offered (the soonest-ending first): an account with
# hundreds of key subscriptions gets a short list, not hundreds of radio buttons.
RENEWAL_OPTIONS_SHOWN = 10


@dataclass(frozen=True)
class RenewalOption:
    subscription_id: int
    key_hint: str
    current_expires_at: datetime
    starts_at: datetime  # = current_expires_at: the renewal starts when that one ends
    expires_at: datetime


def renewable_subscriptions(*, account, product: str, tier: str, at: datetime | None = None):
    """Key-based subscriptions of this product (and tier) that a new key may continue.

    Active or scheduled, not ended, and not already continued by another renewal (a second
    renewal of the same one would overlap it, and a prepaid day would be lost). The review step
    reads the same rule in subscriptions/hot_sql.py (`renewable_json`), bounded to
    RENEWAL_OPTIONS_SHOWN; tests/test_subscriptions.py holds both to the same answers.
    """
    moment = at or clock.now()
    return (
        Subscription.objects.for_account(account)
        .current(moment)
        .filter(source=Source.KEY, product=product, tier=tier, renewed_by__isnull=True)
        .order_by("expires_at", "id")
    )


def new_key_subscription(*, key, account, starts_at: datetime, renews: Subscription | None = None) -> Subscription:
    """The subscription a redeemed key grants, not yet saved: the redemption transaction inserts
    it (keys/hot_sql.py) and writes its `subscription.created` event (`subscription_created_event`)."""
    return Subscription(
        account=account,
        product=key.product,
        tier=key.tier,
        seats=key.seats,
        source=Source.KEY,
        activation_key=key,
        key_hint=key.hint,
        renews=renews,
        started_at=starts_at,
        expires_at=clock.add_months(starts_at, key.months),
    )


def record_subscription_created(*, subscription: Subscription, actor, ip=None, **details) -> None:
    """The audit event of a new subscription, whatever its source; `details` adds source facts."""
    record_event(**subscription_created_event(subscription=subscription, actor=actor, ip=ip, **details))


def subscription_created_event(*, subscription: Subscription, actor, ip=None, **details) -> dict:
    """The arguments of `record_event` for a new subscription."""
    return {
        "action": "subscription.created",
        "actor": actor,
        "account": subscription.account,
        "target": subscription,
        "ip": ip,
        "details": {
            "product": subscription.product,
            "tier": subscription.tier,
            "seats": subscription.seats,
            "source": subscription.source,
            "starts_at": subscription.started_at.isoformat(),
            "expires_at": subscription.expires_at.isoformat(),
            **details,
        },
    }


@transaction.atomic
def end_subscription(*, subscription: Subscription, reason: str, actor, ip=None) -> Subscription:
    """Stop a subscription now (a voided key). Its seats stop counting at once."""
    moment = clock.now()
    Subscription.objects.filter(pk=subscription.pk, ended_at__isnull=True).update(
        ended_at=moment, ended_reason=reason[:200]
    )
    subscription.refresh_from_db()
    record_event(
        action="subscription.ended",
        actor=actor,
        account=subscription.account,
        target=subscription,
        ip=ip,
        details={"reason": reason[:200]},
    )
    return subscription
