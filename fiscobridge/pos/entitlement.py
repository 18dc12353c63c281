"""May a certificate sign? (SPEC 4.1) — asked by fiscal invoicing, shown by the POS Manager.

Seats used = active certificates, expired or not, so an expired certificate that is still
active keeps its place in the seat order: it cannot sign itself, and it still takes one of
the first `capacity` places until the customer revokes it. This keeps one definition of
"used" everywhere (the seat header, the upload check and this rule agree): while used ≤
capacity every valid certificate may sign, and a certificate is over the limit only after
capacity dropped below the count of active certificates.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from fiscobridge.core import clock
from fiscobridge.pos.models import Certificate, CertificateStatus
from fiscobridge.subscriptions.capacity import pos_capacity

OK = "ok"
REVOKED = "revoked"
CERTIFICATE_EXPIRED = "certificate_expired"
NO_ACTIVE_SUBSCRIPTION = "no_active_subscription"
OVER_SEAT_LIMIT = "over_seat_limit"
REASONS = (OK, REVOKED, CERTIFICATE_EXPIRED, NO_ACTIVE_SUBSCRIPTION, OVER_SEAT_LIMIT)


@dataclass(frozen=True)
class Entitlement:
    can_sign: bool
    reason: str  # one of REASONS; "ok" exactly when can_sign


def _decide(*, status: str, not_after: datetime, capacity: int, place: int, moment: datetime) -> Entitlement:
    """`place` is the 1-based position among the account's active certificates in seat order."""
    if status != CertificateStatus.ACTIVE:
        return Entitlement(False, REVOKED)
    if moment >= not_after:
        return Entitlement(False, CERTIFICATE_EXPIRED)
    if capacity <= 0:
        return Entitlement(False, NO_ACTIVE_SUBSCRIPTION)
    if place > capacity:
        return Entitlement(False, OVER_SEAT_LIMIT)
    return Entitlement(True, OK)


def entitlements_for_account(account, at: datetime | None = None) -> dict[int, Entitlement]:
    """Every certificate of the account (by pk) with its entitlement, in two queries."""
    moment = at or clock.now()
    capacity = pos_capacity(account, moment)
    rows = Certificate.objects.for_account(account).in_seat_order().values_list("pk", "status", "not_after")
    result, place = {}, 0
    for pk, status, not_after in rows:
        if status == CertificateStatus.ACTIVE:
            place += 1
        result[pk] = _decide(status=status, not_after=not_after, capacity=capacity, place=place, moment=moment)
    return result


def entitlement_of(certificate: Certificate, at: datetime | None = None) -> Entitlement:
    """One certificate's entitlement, in at most two queries (capacity, then its place)."""
    moment = at or clock.now()
    if certificate.status != CertificateStatus.ACTIVE or moment >= certificate.not_after:
        return _decide(status=certificate.status, not_after=certificate.not_after, capacity=0, place=0, moment=moment)
    capacity = pos_capacity(certificate.account_id, moment)
    ahead = 0
    if capacity > 0:
        uploaded_at = certificate.uploaded_at
        earlier = Q(uploaded_at__lt=uploaded_at) | Q(uploaded_at=uploaded_at, pk__lt=certificate.pk)
        ahead = Certificate.objects.filter(account_id=certificate.account_id).active().filter(earlier).count()
    return _decide(
        status=certificate.status, not_after=certificate.not_after, capacity=capacity, place=ahead + 1, moment=moment
    )
