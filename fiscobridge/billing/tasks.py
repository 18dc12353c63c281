"""Billing work for the task queue."""

from django_tasks import task

from fiscobridge.billing.config import stripe_enabled
from fiscobridge.billing.sync import resync_all


@task()
def resync_stripe_subscriptions() -> dict:
    """Periodic: re-read every known Stripe subscription, so that a webhook lost while the
    endpoint was down is made good within one period. Nothing to do without Stripe settings."""
    if not stripe_enabled():
        return {"skipped": "Stripe is not configured"}
    synced, failed = resync_all()
    return {"synced": synced, "failed": failed}
