"""Offline leases (SPEC 9.1): a signed, time-bounded answer to "may this certificate sign?" that
a POS device keeps and checks without the network (docs/leases.md)."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings

from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.leases.signing_keys import ALGORITHM, current_signing_key
from fiscobridge.pos.entitlement import entitlement_with_facts
from fiscobridge.pos.models import Certificate
from fiscobridge.subscriptions.capacity import pos_capacity_falls_below

AUDIENCE = "fiscobridge-pos"
# A "no" is short-lived: once the customer adds seats or revokes another certificate, the device
# hears "yes" at its next lease within the hour.
REFUSAL_LIFETIME = timedelta(hours=1)


@dataclass(frozen=True)
class Lease:
    token: str
    expires_at: datetime
    jti: str
    can_sign: bool
    reason: str


def _whole_second(moment: datetime) -> datetime:
    """JWT times are whole seconds; rounding down never makes a lease outlive its limit."""
    return moment.replace(microsecond=0)


def lease_expiry(*, account_id: int, place: int, not_after: datetime, now: datetime) -> datetime:
    """When a lease that says "may sign" must end: the first of now + LEASE_HOURS, the
    certificate's notAfter, and the moment the Cloud POS capacity would fall below the
    certificate's place in seat order if nothing changed (docs/decisions.md, "Offline leases")."""
    until = min(now + timedelta(hours=settings.LEASE_HOURS), not_after)
    drop = pos_capacity_falls_below(account_id, place, after=now, until=until)
    return drop if drop is not None else until


def issue_lease(*, account, uid: str, actor=None, ip: str | None = None) -> Lease:
    """A lease for the account's certificate `uid` (CertificateNotFound, 404, also for another
    account's UID), with the entitlement's own decision and reason. Audited; never stored."""
    now = clock.now()
    facts, entitlement = entitlement_with_facts(account.pk, uid, now)  # 404 before anything else
    key = current_signing_key()
    if entitlement.can_sign:
        expires = lease_expiry(account_id=account.pk, place=facts.ahead + 1, not_after=facts.not_after, now=now)
    else:
        expires = now + REFUSAL_LIFETIME
    issued, expires = _whole_second(now), _whole_second(expires)
    jti = uuid.uuid4().hex
    claims = {
        "iss": settings.PUBLIC_BASE_URL,
        "aud": AUDIENCE,
        "sub": uid,
        "acct": account.pk,
        "fpr": facts.fingerprint,
        "can_sign": entitlement.can_sign,
        "reason": entitlement.reason,
        "iat": issued,
        "nbf": issued,
        "exp": expires,
        "jti": jti,
    }
    token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"})
    record_event(
        action="lease.issued",
        actor=actor,
        account=account,
        target=Certificate(pk=facts.id),  # only its label and id are written
        ip=ip,
        details={
            "certificate": uid,
            "jti": jti,
            "exp": expires.astimezone(UTC).isoformat(),
            "can_sign": entitlement.can_sign,
            "reason": entitlement.reason,
            "kid": key.kid,
        },
    )
    return Lease(token=token, expires_at=expires, jti=jti, can_sign=entitlement.can_sign, reason=entitlement.reason)
