"""Webhook work for the task queue (docs/webhooks.md). A receiver's failure is the delivery's
state and schedules its own retry (webhooks/services.py), so these tasks do not use the
queue's `retrying`: a task fails only for our own errors, and the sweep picks the delivery up."""

from django_tasks import task

from fiscobridge.webhooks.events import emit_due_subscription_endings
from fiscobridge.webhooks.models import Delivery, DeliveryStatus
from fiscobridge.webhooks.services import attempt_delivery, deliver_due


@task()
def deliver_event(event_id: str) -> list[str]:
    """The first attempt of each of an event's deliveries (enqueued by the change that made it)."""
    ids = Delivery.objects.filter(event_id=event_id, status=DeliveryStatus.PENDING).values_list("pk", flat=True)
    return [attempt_delivery(pk) for pk in list(ids)]


@task()
def deliver(delivery_id: int) -> str:
    """One delivery's due attempt: a retry (enqueued to run after its time) or a resend."""
    return attempt_delivery(delivery_id)


@task()
def deliver_due_webhooks() -> dict:
    """Periodic: every attempt that is due and was not made (a lost task, a dead worker)."""
    return deliver_due()


@task()
def emit_subscription_endings() -> dict:
    """Periodic (hourly, like the e-mail reminders): `subscription.ending` events that are due."""
    return {"events": emit_due_subscription_endings()}
