"""Changes of state of one activation key after issuance: revoke (partner or staff) and void (staff)."""

from django.db import transaction

from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.core.text import clean_text
from fiscobridge.keys.errors import (
    KeyAlreadyActivated,
    KeyAlreadyRevoked,
    KeyNotVoidable,
)
from fiscobridge.keys.models import ActivationKey, KeyStatus
from fiscobridge.keys.rollup import key_revoked, key_voided
from fiscobridge.notifications.outbox import queue_key_voided_emails
from fiscobridge.subscriptions.services import end_subscription
from fiscobridge.webhooks import events as webhook_events


def _reason(reason: str) -> str:
    return clean_text(reason, field="reason", max_length=500, required=True)


@transaction.atomic
def revoke_key(*, key: ActivationKey, reason: str, actor, ip=None) -> ActivationKey:
    """Withdraw an unredeemed key. The caller has already checked that `actor` may see it."""
    reason = _reason(reason)
    moment = clock.now()
    changed = ActivationKey.objects.filter(pk=key.pk, status=KeyStatus.AVAILABLE).update(
        status=KeyStatus.REVOKED, revoked_at=moment, revoked_reason=reason
    )
    key.refresh_from_db()
    if not changed:
        raise KeyAlreadyActivated() if key.status == KeyStatus.ACTIVATED else KeyAlreadyRevoked()
    record_event(action="key.revoked", actor=actor, partner=key.partner, target=key, ip=ip, details={"reason": reason})
    webhook_events.key_revoked(key=key)
    key_revoked(batch_id=key.batch_id)  # last: the batch's counts row is shared (keys/rollup.py)
    return key


@transaction.atomic
def void_key(*, key: ActivationKey, reason: str, actor, ip=None) -> ActivationKey:
    """Staff only (fraud, chargeback): an activated key's subscription ends at once."""
    reason = _reason(reason)
    changed = ActivationKey.objects.filter(pk=key.pk, status=KeyStatus.ACTIVATED, voided_at__isnull=True).update(
        voided_at=clock.now(), voided_reason=reason
    )
    key.refresh_from_db()
    if not changed:
        raise KeyNotVoidable()
    subscription = getattr(key, "subscription", None)
    if subscription is not None:
        end_subscription(subscription=subscription, reason=f"key voided: {reason}", actor=actor, ip=ip)
    record_event(
        action="key.voided",
        actor=actor,
        account=key.activated_account,
        partner=key.partner,
        target=key,
        ip=ip,
        details={"reason": reason},
    )
    # Queued in this transaction (so they exist iff the void commits) and sent after it.
    queue_key_voided_emails(key=key)
    webhook_events.key_voided(key=key, subscription=subscription)
    key_voided(batch_id=key.batch_id)  # last: the batch's counts row is shared (keys/rollup.py)
    return key
