"""Hand-written SQL of the entitlement check, asked by POS devices before each signing (issue 9).

One statement reads what SPEC 4.1 needs about one certificate: its status and notAfter, the
account's Cloud POS capacity and how many active certificates are ahead of it in seat order.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from fiscobridge.core.hot_sql import from_db
from fiscobridge.pos.models import Certificate, CertificateStatus
from fiscobridge.subscriptions.hot_sql import active_seats
from fiscobridge.subscriptions.models import Product

CERTIFICATES = Certificate._meta.db_table


@dataclass(frozen=True)
class EntitlementFacts:
    status: str
    not_after: datetime
    capacity: int
    ahead: int  # active certificates before this one in seat order (`in_seat_order`)
    # Read in the same statement for the offline lease (leases/), which names the certificate
    # by id in its audit event and by fingerprint in its claims: no second query on that path.
    id: int
    fingerprint: str


def entitlement_facts(*, account_id: int, uid: str, moment: datetime) -> EntitlementFacts | None:
    """The facts of the account's certificate `uid`, or None when it has none by that UID."""
    seats, seats_params = active_seats(
        account="c.account_id", product=f"'{Product.POS.value}'", tier="''", moment=moment
    )
    sql = (
        f"SELECT c.status, c.not_after, {seats}, "
        f"(SELECT COUNT(*) FROM {CERTIFICATES} o WHERE o.account_id = c.account_id AND o.status = %s "
        "AND (o.uploaded_at < c.uploaded_at OR (o.uploaded_at = c.uploaded_at AND o.id < c.id))), "
        "c.id, c.fingerprint "
        f"FROM {CERTIFICATES} c WHERE c.account_id = %s AND c.uid = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*seats_params, CertificateStatus.ACTIVE, account_id, uid])
        row = cursor.fetchone()
    if row is None:
        return None
    status, not_after, capacity, ahead, pk, fingerprint = row
    return EntitlementFacts(status, from_db(not_after), int(capacity), int(ahead), int(pk), fingerprint)
