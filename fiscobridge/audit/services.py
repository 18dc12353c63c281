"""Writing audit events: the only way an Event row comes to exist."""

from typing import Any

from django.db import models

from fiscobridge.audit.models import Event


def event_fields(
    *,
    action: str,
    actor=None,
    account=None,
    partner=None,
    partner_id: int | None = None,
    target: models.Model | None = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The column values of one event (by id), for the ORM here and for hand-written inserts of
    the redemption hot path (keys/hot_sql.py), so both store exactly the same thing. The hot
    path names the partner by `partner_id` (its key rows carry the id, not a loaded partner)."""
    return {
        "action": action,
        "actor_id": actor.pk if getattr(actor, "pk", None) else None,
        "account_id": account.pk if account is not None else None,
        "partner_id": partner.pk if partner is not None else partner_id,
        "target_type": target._meta.label_lower if target is not None else "",
        "target_id": str(target.pk) if target is not None else "",
        "ip": ip,
        "details": details or {},
    }


def record_event(**fields) -> Event:
    """Store one event; the arguments are those of `event_fields`."""
    return Event.objects.create(**event_fields(**fields))
