"""Changes of state of webhook endpoints and deliveries (docs/webhooks.md)."""

import http.client
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F

from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.core.errors import DecryptionError, InvalidInput
from fiscobridge.core.text import clean_text
from fiscobridge.tasks.queue import enqueue_with_transaction
from fiscobridge.webhooks import gateway
from fiscobridge.webhooks.models import Delivery, DeliveryStatus, Endpoint, EndpointStatus, EventType
from fiscobridge.webhooks.signing import new_secret, seal, signed_headers, unseal

logger = logging.getLogger("fiscobridge.webhooks")

MAX_ENDPOINTS = 20
# Seconds after each failed attempt before the next (SPEC 9.2): about 5 s, 5 min, 30 min, 2 h,
# 5 h, 10 h, 10 h; after the 8th failed attempt the delivery has failed.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
# An attempt claimed by a worker is its own for this long: longer than one POST can take
# (connect, send and read, each within the 10 s timeout), so only a dead worker's claim lapses.
CLAIM_SECONDS = 120


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: Endpoint
    secret: str  # `whsec_…`: shown to the partner once, then only stored encrypted


def _events(events) -> str:
    chosen = sorted({str(e) for e in events or []})
    if not chosen:
        raise InvalidInput.for_field("events", "Choose at least one event")
    unknown = [e for e in chosen if e not in EventType.values]
    if unknown:
        raise InvalidInput.for_field("events", f"Unknown event: {unknown[0][:40]}")
    return "," + ",".join(chosen) + ","


def _description(text: str) -> str:
    return clean_text(text or "", field="description", max_length=200)


@transaction.atomic
def create_endpoint(*, partner, actor, url: str, events, description: str = "", ip=None) -> CreatedEndpoint:
    url = gateway.check_url(url)
    events_text = _events(events)
    description = _description(description)
    # Counted under the partner's row lock: two concurrent creations cannot both pass the limit.
    type(partner).objects.select_for_update().filter(pk=partner.pk).first()
    if Endpoint.objects.for_partner(partner).count() >= MAX_ENDPOINTS:
        raise InvalidInput.for_field("url", f"At most {MAX_ENDPOINTS} endpoints; delete one first")
    secret = new_secret()
    endpoint = Endpoint.objects.create(
        partner=partner, url=url, events=events_text, description=description, secret_encrypted=seal(secret)
    )
    record_event(
        action="webhook_endpoint.created", actor=actor, partner=partner, target=endpoint, ip=ip, details={"url": url}
    )
    return CreatedEndpoint(endpoint=endpoint, secret=secret)


@transaction.atomic
def update_endpoint(
    *, endpoint: Endpoint, actor, url=None, events=None, description=None, enabled=None, ip=None
) -> Endpoint:
    """Change what was given (None: unchanged)."""
    if url is not None:
        endpoint.url = gateway.check_url(url)
    if events is not None:
        endpoint.events = _events(events)
    if description is not None:
        endpoint.description = _description(description)
    if enabled is not None:
        endpoint.enabled = bool(enabled)
    endpoint.save(update_fields=["url", "events", "description", "enabled"])
    record_event(
        action="webhook_endpoint.changed",
        actor=actor,
        partner=endpoint.partner,
        target=endpoint,
        ip=ip,
        details={"url": endpoint.url, "enabled": endpoint.enabled, "events": endpoint.event_types},
    )
    return endpoint


@transaction.atomic
def delete_endpoint(*, endpoint: Endpoint, actor, ip=None) -> None:
    """The endpoint and its delivery log go; a delivery in flight finds its row gone and stops."""
    record_event(
        action="webhook_endpoint.deleted",
        actor=actor,
        partner=endpoint.partner,
        target=endpoint,
        ip=ip,
        details={"url": endpoint.url},
    )
    endpoint.delete()


@transaction.atomic
def resend_delivery(*, delivery: Delivery, actor, ip=None) -> Delivery:
    """Send the event to the endpoint again, now, with a fresh retry schedule. The same event id
    (`webhook-id`), so a receiver that already has it can drop it."""
    from fiscobridge.webhooks.tasks import deliver

    moment = clock.now()
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, failures=0, next_attempt_at=moment, claimed_until=None
    )
    enqueue_with_transaction(deliver, delivery.pk)
    record_event(
        action="webhook_delivery.resent",
        actor=actor,
        partner=delivery.endpoint.partner,
        target=delivery.endpoint,
        ip=ip,
        details={"event": delivery.event_id, "delivery": delivery.pk},
    )
    delivery.refresh_from_db()
    return delivery


# --- sending (in the worker) -------------------------------------------------------------------


def _claim(delivery_id: int) -> bool:
    """Take the delivery's due attempt. One conditional UPDATE: of two workers (two tasks, or a task
    and the sweep) exactly one changes the row and sends; the other sends nothing."""
    moment = clock.now()
    # Conditions on this row's own columns only: a condition on a joined table (the endpoint)
    # makes Django write `WHERE id IN (SELECT …)`, and PostgreSQL does not re-check such a
    # subquery after waiting for the other worker's update, so both would send (the test with
    # four workers caught it).
    return bool(
        Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=moment)
        .exclude(claimed_until__gt=moment)
        .update(claimed_until=moment + timedelta(seconds=CLAIM_SECONDS))
    )


def attempt_delivery(delivery_id: int) -> str:
    """Make the delivery's due attempt, if it is due and no one else makes it; record the outcome
    and schedule the next attempt. Returns what happened (for the task's result). Never raises for
    the receiver's failures: they are the delivery's state, not the task's."""
    if not _claim(delivery_id):
        return "not due"
    delivery = Delivery.objects.select_related("event", "endpoint__partner").filter(pk=delivery_id).first()
    if delivery is None:
        return "gone"  # its endpoint was deleted meanwhile
    endpoint, event = delivery.endpoint, delivery.event
    if not endpoint.enabled:
        # Kept pending for when it is enabled again (the sweep skips disabled endpoints).
        Delivery.objects.filter(pk=delivery_id).update(claimed_until=None)
        return "endpoint disabled"
    moment = clock.now()
    code, body, error = None, "", ""
    try:
        headers = signed_headers(
            secret=unseal(endpoint.secret_encrypted), message_id=event.pk, body=event.body, at=moment
        )
        answer = gateway.post(endpoint.url, body=event.body, headers=headers)
        code, body = answer.status, answer.body
        if not 200 <= code < 300:
            error = f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else "")
    except gateway.TargetRefused as refused:
        error = f"refused: {refused}"
    except DecryptionError:  # the encryption secret changed without FISCOBRIDGE_ENCRYPTION_OLD_KEYS
        error = "the endpoint's signing secret cannot be decrypted with the current encryption key"
    except (OSError, http.client.HTTPException, ValueError) as failure:  # refused, timeout, TLS, not HTTP…
        error = f"{type(failure).__name__}: {failure}"[:500]
    if not error:
        return _succeeded(delivery, moment, code, body)
    return _failed(delivery, moment, code, body, error)


def _succeeded(delivery: Delivery, moment, code: int, body: str) -> str:
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.SUCCEEDED,
            attempts=F("attempts") + 1,
            next_attempt_at=None,
            claimed_until=None,
            last_attempt_at=moment,
            response_code=code,
            response_body=body,
            last_error="",
        )
        Endpoint.objects.filter(pk=delivery.endpoint_id, status=EndpointStatus.FAILING).update(
            status=EndpointStatus.OK, failing_since=None
        )
    return f"delivered ({code})"


def _failed(delivery: Delivery, moment, code, body: str, error: str) -> str:
    from fiscobridge.webhooks.tasks import deliver

    failures = delivery.failures + 1
    logger.warning(
        "webhook delivery %s (event %s, endpoint %s) failed: %s",
        delivery.pk,
        delivery.event_id,
        delivery.endpoint_id,
        error,
    )
    with transaction.atomic():
        if failures <= len(RETRY_SCHEDULE):
            again = moment + timedelta(seconds=RETRY_SCHEDULE[failures - 1])
            status = DeliveryStatus.PENDING
        else:
            again, status = None, DeliveryStatus.FAILED
        Delivery.objects.filter(pk=delivery.pk).update(
            status=status,
            attempts=F("attempts") + 1,
            failures=failures,
            next_attempt_at=again,
            claimed_until=None,
            last_attempt_at=moment,
            response_code=code,
            response_body=body,
            last_error=error[:500],
        )
        if again is not None:
            enqueue_with_transaction(deliver.using(run_after=again), delivery.pk)
            return f"failed ({error}); retry at {again.isoformat()}"
        _endpoint_failing(delivery.endpoint, moment)
    return f"failed ({error}); gave up"


def _endpoint_failing(endpoint: Endpoint, moment) -> None:
    """Mark the endpoint failing and e-mail the partner, once per time it starts failing."""
    from fiscobridge.webhooks.emails import queue_endpoint_failing_email

    if Endpoint.objects.filter(pk=endpoint.pk, status=EndpointStatus.OK).update(
        status=EndpointStatus.FAILING, failing_since=moment
    ):
        endpoint.status, endpoint.failing_since = EndpointStatus.FAILING, moment
        queue_endpoint_failing_email(endpoint=endpoint)


def due_delivery_ids(limit: int = 500) -> list[int]:
    moment = clock.now()
    return list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=moment, endpoint__enabled=True)
        .exclude(claimed_until__gt=moment)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def deliver_due(limit: int = 500) -> dict[str, int]:
    """Every due attempt (the sweep behind the tasks: a lost task, a worker that died mid-send)."""
    outcomes = [attempt_delivery(pk) for pk in due_delivery_ids(limit)]
    return {
        "delivered": sum(o.startswith("delivered") for o in outcomes),
        "failed": sum(o.startswith("failed") for o in outcomes),
    }
