"""Hand-written SQL of invoice usage, reported by the sync engine after each synced batch (issue 9).

One statement counts a report: an upsert of the connection's month row that adds the invoices
only while the connection is active and the total stays within its limit. PostgreSQL re-checks
the condition on the locked, latest row, so parallel reports never pass the limit; SQLite runs
writers one at a time.
"""

from datetime import date, datetime

from django.db import connection

from fiscobridge.core.hot_sql import RowReader, to_db
from fiscobridge.integrations.models import Connection, ConnectionStatus, ConnectionUsage

USAGE = ConnectionUsage._meta.db_table
CONNECTIONS = Connection._meta.db_table
_CONNECTION = RowReader(Connection, [f.attname for f in Connection._meta.concrete_fields])


def connection_by_uid(*, account_id: int, uid: str) -> Connection | None:
    """The account's connection with this UID (the lookup every usage report starts with)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_CONNECTION.sql('c')} FROM {CONNECTIONS} c WHERE c.account_id = %s AND c.uid = %s",
            [account_id, uid],
        )
        row = cursor.fetchone()
    return _CONNECTION.build(row) if row else None


def add_invoices(*, connection_id: int, month: date, invoices: int, limit: int, moment: datetime) -> int | None:
    """Count `invoices` on the connection's `month` row; returns the new total, or None when
    nothing was counted (the connection is not active, or the total would pass `limit`)."""
    sql = (
        f"INSERT INTO {USAGE} AS u (connection_id, month, invoices, updated_at) "
        f"SELECT c.id, %s, %s, %s FROM {CONNECTIONS} c WHERE c.id = %s AND c.status = %s AND %s <= %s "
        "ON CONFLICT (connection_id, month) DO UPDATE SET invoices = u.invoices + excluded.invoices, "
        "updated_at = excluded.updated_at WHERE u.invoices + excluded.invoices <= %s "
        "RETURNING invoices"
    )
    params = [
        connection.ops.adapt_datefield_value(month),
        invoices,
        to_db(moment),
        connection_id,
        ConnectionStatus.ACTIVE,
        invoices,
        limit,
        limit,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None
