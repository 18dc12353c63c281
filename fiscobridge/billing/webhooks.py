"""Stripe webhooks: verified, stored once by event id, applied through the sync."""

import logging

from django.db import transaction
from django.db.models import F

from fiscobridge.accounts.locks import lock_account
from fiscobridge.audit.services import record_event
from fiscobridge.billing import stripe_gateway as gateway
from fiscobridge.billing.errors import (
    ForeignCustomer,
    WebhookHandlingFailed,
    WebhookNotUnderstood,
)
from fiscobridge.billing.models import (
    CheckoutSession,
    EventStatus,
    StripeEvent,
)
from fiscobridge.billing.sync import (
    stripe_customer_for,
    sync_stripe_subscription,
)
from fiscobridge.core import clock, metrics

logger = logging.getLogger(__name__)


def _checkout_completed(obj: dict):
    remote = gateway.retrieve_checkout_session(obj["id"])
    customer = stripe_customer_for(remote.customer_id)
    with transaction.atomic():
        lock_account(customer.account)
        local = CheckoutSession.objects.filter(session_id=remote.id).first()
        if local is not None and local.account_id != customer.account_id:
            raise WebhookNotUnderstood("The checkout session was started by another account")
        if local is not None and remote.status == "complete" and local.completed_at is None:
            local.completed_at = clock.now()
            local.stripe_subscription_id = remote.subscription_id
            local.save(update_fields=["completed_at", "stripe_subscription_id"])
            record_event(
                action="billing.checkout_completed",
                account=customer.account,
                target=local,
                details={"stripe_subscription": remote.subscription_id},
            )
        if remote.subscription_id:
            sync_stripe_subscription(subscription_id=remote.subscription_id, customer_id=customer.customer_id)
    return customer.account


def _subscription_changed(obj: dict):
    customer = stripe_customer_for(gateway.object_id(obj.get("customer")))
    sync_stripe_subscription(subscription_id=obj["id"], customer_id=customer.customer_id)
    return customer.account


def _invoice_changed(obj: dict):
    subscription_id = gateway.invoice_subscription_id(obj)
    customer_id = gateway.object_id(obj.get("customer"))
    if not subscription_id:
        return None  # a one-off invoice: nothing to sync
    customer = stripe_customer_for(customer_id)
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


def handle_webhook(*, payload: bytes, signature: str | None) -> StripeEvent:
    """Verify, store once by id, and apply a Stripe event. A handled event is never applied again."""
    data = gateway.construct_event(payload=payload, signature=signature)
    obj = (data.get("data") or {}).get("object") or {}
    created = data.get("created")
    record, _ = StripeEvent.objects.get_or_create(
        event_id=data["id"],
        defaults={
            "type": data["type"][:100],
            "payload": {
                "object": obj.get("object"),
                "object_id": obj.get("id"),
                "livemode": data.get("livemode"),
                "api_version": data.get("api_version"),
            },
            "created_in_stripe_at": gateway.from_timestamp(created) if isinstance(created, int) else None,
        },
    )
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
                record_event(
                    action="stripe.event_handled",
                    account=account,
                    target=record,
                    details={"event_id": record.event_id, "type": record.type},
                )
        return record
    except Exception as error:
        message = f"{getattr(error, 'code', type(error).__name__)}: {error}"[:2000]
        logger.warning("stripe event %s (%s) failed: %s", record.event_id, record.type, message)
        # The type is a label only when it is one we handle: the set stays bounded.
        metrics.STRIPE_EVENTS_FAILED.labels(type=record.type if record.type in HANDLERS else "other").inc()
        StripeEvent.objects.filter(pk=record.pk).update(
            status=EventStatus.FAILED,
            error=message,
            attempts=F("attempts") + 1,
        )
        record.refresh_from_db()
        record_event(
            action="stripe.event_failed",
            target=record,
            details={
                "event_id": record.event_id,
                "type": record.type,
                "error": getattr(error, "code", type(error).__name__),
            },
        )
        raise WebhookHandlingFailed(record) from error
