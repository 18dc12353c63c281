"""Hand-written SQL of invoice usage, reported by the sync engine after each synced batch (issue 9).

One statement counts a report: an upsert of the month's row of the connection's account and tier
that adds the invoices only while the connection is active, its tier (or the trial) is available
to the account, and the total stays within the tier's limit — the limit read from the active
subscriptions in the same statement. PostgreSQL re-checks
the condition on the locked, latest row, so parallel reports never pass the limit; SQLite runs
writers one at a time.
"""

from datetime import date, datetime

from django.db import connection as db

from fiscobridge.core.hot_sql import RowReader, to_db
from fiscobridge.integrations.models import Connection, ConnectionStatus, ConnectionTier, InvoiceUsage
from fiscobridge.subscriptions.hot_sql import active_seats
from fiscobridge.subscriptions.models import Product

USAGE = InvoiceUsage._meta.db_table
CONNECTIONS = Connection._meta.db_table
_CONNECTION = RowReader(Connection, [f.attname for f in Connection._meta.concrete_fields])


def connection_by_uid(*, account_id: int, uid: str) -> Connection | None:
    """The account's connection with this UID (the lookup every usage report starts with)."""
    with db.cursor() as cursor:
        cursor.execute(
            f"SELECT {_CONNECTION.sql('c')} FROM {CONNECTIONS} c WHERE c.account_id = %s AND c.uid = %s",
            [account_id, uid],
        )
        row = cursor.fetchone()
    return _CONNECTION.build(row) if row else None


def _limit(*, account_id: int, tier: str, trial: bool, quota: int, moment: datetime) -> tuple[str, list]:
    """The tier's monthly limit as an SQL expression over the subscriptions active at `moment`:
    the quota per connection times the tier's seats; the trial's quota while no paid Integrations
    seat is active. 0 when the tier is not available (nothing can be counted)."""
    product = f"'{Product.INT.value}'"
    if trial:
        seats, params = active_seats(account="%s", product=product, tier=None, moment=moment)
        return f"(CASE WHEN {seats} = 0 THEN %s ELSE 0 END)", [account_id, *params, quota]
    seats, params = active_seats(account="%s", product=product, tier="%s", moment=moment)
    return f"(%s * {seats})", [quota, account_id, tier, *params]


def add_invoices(
    *, connection: Connection, month: date, invoices: int, quota: int, moment: datetime
) -> tuple[int, int] | None:
    """Count `invoices` on the month's row of the connection's account and tier; returns the new
    total and the tier's limit, or None when nothing was counted (the connection is not active,
    its tier is not available to the account, or the total would pass the tier's limit)."""
    limit, limit_params = _limit(
        account_id=connection.account_id,
        tier=connection.tier,
        trial=connection.tier == ConnectionTier.TRIAL,
        quota=quota,
        moment=moment,
    )
    sql = (
        f"INSERT INTO {USAGE} AS u (account_id, tier, month, invoices, updated_at) "
        f"SELECT c.account_id, c.tier, %s, %s, %s FROM {CONNECTIONS} c WHERE c.id = %s AND c.status = %s "
        f"AND %s <= {limit} "
        "ON CONFLICT (account_id, tier, month) DO UPDATE SET invoices = u.invoices + excluded.invoices, "
        f"updated_at = excluded.updated_at WHERE u.invoices + excluded.invoices <= {limit} "
        f"RETURNING invoices, {limit}"
    )
    params = [
        db.ops.adapt_datefield_value(month),
        invoices,
        to_db(moment),
        connection.pk,
        ConnectionStatus.ACTIVE,
        invoices,
        *limit_params,
        *limit_params,
        *limit_params,
    ]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None
