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

from fiscobridge.core import clock
from fiscobridge.core.ids import is_uid
from fiscobridge.pos import hot_sql
from fiscobridge.pos.errors import CertificateNotFound
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
    """One certificate's entitlement, in one query."""
    return entitlement_by_uid(certificate.account_id, certificate.uid, at)


def entitlement_by_uid(account_id: int, uid: str, at: datetime | None = None) -> Entitlement:
    """The entitlement of the account's certificate `uid` (CertificateNotFound, 404, also for
    another account's UID), in one statement: the hot path of POS devices (pos/hot_sql.py)."""
    return entitlement_with_facts(account_id, uid, at)[1]


def entitlement_with_facts(
    account_id: int, uid: str, at: datetime | None = None
) -> tuple[hot_sql.EntitlementFacts, Entitlement]:
    """`entitlement_by_uid` with the facts it was decided from (the certificate's id, notAfter,
    fingerprint and place in seat order), for the offline lease, which must say the same."""
    uid, moment = str(uid), at or clock.now()
    facts = hot_sql.entitlement_facts(account_id=account_id, uid=uid, moment=moment) if is_uid(uid) else None
    if facts is None:
        raise CertificateNotFound()
    entitlement = _decide(
        status=facts.status,
        not_after=facts.not_after,
        capacity=facts.capacity,
        place=facts.ahead + 1,
        moment=moment,
    )
    return facts, entitlement
