"""Writing audit events: the only way an Event row comes to exist."""

from typing import Any

from django.db import models

from fiscobridge.audit.models import Event


def record_event(
    *,
    action: str,
    actor=None,
    account=None,
    partner=None,
    target: models.Model | None = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> Event:
    return Event.objects.create(
        action=action,
        actor=actor if getattr(actor, "pk", None) else None,
        account=account,
        partner=partner,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        ip=ip,
        details=details or {},
    )
