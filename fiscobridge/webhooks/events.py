"""Emitting webhook events: one small function per fact, called by the service that changes it,
inside its transaction. The event, its deliveries and the task that sends them exist exactly
when the change commits; the sending happens in the worker (webhooks/tasks.py), so a change
never waits on a receiver.

Payloads name keys by their hint (`POS-••••-••••-ABCD`), never by their code: the code is not
stored anywhere, and nothing here could read it (tests/test_no_plain_codes.py checks the bodies).
"""

import json
import secrets
from datetime import UTC, datetime

from django.db import IntegrityError, connections, transaction

from fiscobridge.core import clock
from fiscobridge.core.hot_sql import insert_sql
from fiscobridge.notifications.reminders import due_threshold, reminder_candidates, reminder_days
from fiscobridge.tasks.queue import enqueue_with_transaction, task_row
from fiscobridge.webhooks.models import Delivery, DeliveryStatus, Endpoint, Event, EventType


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(14)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _package(thing) -> dict:
    return {"product": thing.product, "tier": thing.tier or None, "seats": thing.seats, "months": thing.months}


def _key(key) -> dict:
    return {"id": key.pk, "hint": key.hint, "batch_id": key.batch_id}


def _subscription(subscription) -> dict:
    return {
        "id": subscription.pk,
        "starts_at": _iso(subscription.started_at),
        "expires_at": _iso(subscription.expires_at),
        "ended_at": _iso(subscription.ended_at),
    }


def body_text(*, event_id: str, event_type: str, created_at: datetime, data: dict) -> str:
    payload = {"id": event_id, "type": event_type, "created_at": _iso(created_at), "data": data}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def _new_event(partner_id: int, event_type: str, data: dict, dedupe_key: str | None = None) -> Event:
    moment = clock.now()
    event_id = new_event_id()
    return Event(
        id=event_id,
        partner_id=partner_id,
        type=event_type,
        created_at=moment,
        body=body_text(event_id=event_id, event_type=event_type, created_at=moment, data=data),
        dedupe_key=dedupe_key,
    )


def emit(*, partner_id: int, event_type: str, data: dict, dedupe_key: str | None = None) -> Event | None:
    """Tell the partner's endpoints that listen to `event_type`: the event, one delivery per
    endpoint, and the task that sends them, all in the caller's transaction. Nothing when no
    endpoint listens. With `dedupe_key`, the same fact is told at most once, ever."""
    from fiscobridge.webhooks.tasks import deliver_event  # the tasks module imports the services

    endpoints = list(Endpoint.objects.filter(partner_id=partner_id).listening(event_type).values_list("pk", flat=True))
    if not endpoints:
        return None
    event = _new_event(partner_id, event_type, data, dedupe_key)
    with transaction.atomic():
        if dedupe_key is not None:
            try:
                with transaction.atomic():  # a concurrent run that told it first wins; no error
                    event.save(force_insert=True)
            except IntegrityError:
                return None
        else:
            event.save(force_insert=True)
        Delivery.objects.bulk_create(
            [Delivery(event=event, endpoint_id=pk, next_attempt_at=event.created_at) for pk in endpoints]
        )
        enqueue_with_transaction(deliver_event, event.pk)
    return event


# --- the facts ------------------------------------------------------------------------------


def _listening_endpoints(partner: str, event_type: str) -> tuple[str, list]:
    """`SELECT 1 FROM` the endpoints of `partner` (an SQL expression) that listen to `event_type`,
    and its parameters (those of `partner` not included)."""
    endpoints = connections["default"].ops.quote_name(Endpoint._meta.db_table)
    enabled = "enabled = 1" if connections["default"].vendor == "sqlite" else "enabled"
    return f"SELECT 1 FROM {endpoints} WHERE partner_id = {partner} AND {enabled} AND events LIKE %s", [
        f"%,{event_type},%"
    ]


def listens_sql(partner_column: str, event_type: str) -> tuple[str, list]:
    """An SQL expression (and its parameters): does the partner in `partner_column` have an
    endpoint listening to `event_type`? Read by the activation's claim in the same statement, so
    that an activation of a partner without webhooks builds no event (keys/redemption.py)."""
    listening, params = _listening_endpoints(partner_column, event_type)
    return f"EXISTS ({listening})", params


def key_activated_statements(*, key, subscription, account) -> tuple[list[tuple[str, list]], object]:
    """The activation's event as writes for its one final round trip (keys/redemption.py): the
    event and its deliveries, and the task row, each written only if an endpoint listens (so an
    activation of a partner without webhooks writes nothing). Returns (statements, the task row
    or None) — `announce` the row if its statement inserted it."""
    from fiscobridge.webhooks.tasks import deliver_event

    event = _new_event(
        key.partner_id,
        EventType.KEY_ACTIVATED,
        {
            "key": _key(key),
            "package": _package(key),
            "account": {"name": account.name},
            "subscription": _subscription(subscription),
            "activated_at": _iso(key.activated_at),
        },
    )
    database = connections["default"]
    endpoints = database.ops.quote_name(Endpoint._meta.db_table)
    listening, listening_params = _listening_endpoints("%s", EventType.KEY_ACTIVATED)
    listening_params = [key.partner_id, *listening_params]
    statements = [_insert_if(insert_sql([event]), listening, listening_params)]
    delivery_table = database.ops.quote_name(Delivery._meta.db_table)
    pending = DeliveryStatus.PENDING
    statements.append(
        (
            f"INSERT INTO {delivery_table} (event_id, endpoint_id, status, attempts, failures, next_attempt_at,"
            " response_body, last_error, created_at)"
            f" SELECT %s, id, %s, 0, 0, %s, '', '', %s FROM {endpoints}"
            f" WHERE {listening.split(' WHERE ', 1)[1]}",
            [
                event.pk,
                pending,
                *[database.ops.adapt_datetimefield_value(event.created_at)] * 2,
                *listening_params,
            ],
        )
    )
    row = task_row(deliver_event, event.pk)
    if row is None:  # another task backend: enqueued after the commit, if the event was written
        transaction.on_commit(lambda: _enqueue_if_written(event.pk), robust=True)
        return statements, None
    statements.append(_insert_if(insert_sql([row]), listening, listening_params))
    return statements, row


def _enqueue_if_written(event_id: str) -> None:
    from fiscobridge.webhooks.tasks import deliver_event

    if Event.objects.filter(pk=event_id).exists():
        deliver_event.enqueue(event_id)


def _insert_if(insert: tuple[str, list], condition: str, condition_params: list) -> tuple[str, list]:
    """`INSERT … VALUES (…)` of one row turned into `INSERT … SELECT … WHERE EXISTS (condition)`."""
    sql, params = insert
    head, values = sql.split(" VALUES ", 1)
    return f"{head} SELECT {values[1:-1]} WHERE EXISTS ({condition})", [*params, *condition_params]


def key_revoked(*, key) -> None:
    emit(
        partner_id=key.partner_id,
        event_type=EventType.KEY_REVOKED,
        data={"key": _key(key), "package": _package(key), "revoked_at": _iso(key.revoked_at)},
    )


def key_voided(*, key, subscription) -> None:
    account = key.activated_account
    emit(
        partner_id=key.partner_id,
        event_type=EventType.KEY_VOIDED,
        data={
            "key": _key(key),
            "package": _package(key),
            "account": {"name": account.name if account else None},
            "subscription": _subscription(subscription) if subscription is not None else None,
            "voided_at": _iso(key.voided_at),
        },
    )


def batch_issued(*, batch) -> None:
    emit(
        partner_id=batch.partner_id,
        event_type=EventType.BATCH_ISSUED,
        data={
            "batch": {
                "id": batch.pk,
                "quantity": batch.quantity,
                "reference": batch.reference,
                "redeem_by": _iso(batch.redeem_by),
                "created_at": _iso(batch.created_at),
            },
            "package": _package(batch),
        },
    )


def partners_listening(event_type: str) -> set[int]:
    return set(Endpoint.objects.listening(event_type).values_list("partner_id", flat=True).distinct())


def emit_due_subscription_endings(*, at: datetime | None = None) -> int:
    """`subscription.ending` for every key-based subscription of a listening partner that reached
    a reminder threshold (30, 7, 1 days): the very rule and candidates of the e-mail reminders
    (notifications/reminders.py), run by the same hourly schedule (fiscobridge/jobs.py). Each
    (subscription, threshold) is told once, ever. Returns how many events this run wrote."""
    moment = at or clock.now()
    days = reminder_days()
    listening = partners_listening(EventType.SUBSCRIPTION_ENDING)
    if not days or not listening:
        return 0
    written = 0
    candidates = reminder_candidates(moment, max(days)).filter(activation_key__partner_id__in=listening)
    for subscription in candidates.iterator(chunk_size=500):
        threshold = due_threshold(subscription, moment, days)
        if threshold is not None and subscription_ending(subscription=subscription, days=threshold) is not None:
            written += 1
    return written


def subscription_ending(*, subscription, days: int) -> Event | None:
    """Once per (subscription, threshold), ever: the event's dedupe key."""
    key = subscription.activation_key
    return emit(
        partner_id=key.partner_id,
        event_type=EventType.SUBSCRIPTION_ENDING,
        dedupe_key=f"subscription:{subscription.pk}:ending:{days}d",
        data={
            "days_left": days,
            "key": _key(key),
            "package": _package(key),
            "account": {"name": subscription.account.name},
            "subscription": _subscription(subscription),
        },
    )
