"""Reads of an account's connections and their monthly invoice usage — always from the account first."""

from datetime import date, datetime

from django.conf import settings

from fiscobridge.core import clock
from fiscobridge.core.ids import is_uid
from fiscobridge.core.localtime import month_start
from fiscobridge.integrations import hot_sql
from fiscobridge.integrations.errors import ConnectionNotFound
from fiscobridge.integrations.models import Connection, ConnectionTier, ConnectionUsage


def get_connection_for_account(account, uid: str) -> Connection:
    """The account's own connection, or 404 — also for another account's connection."""
    if not is_uid(uid):
        raise ConnectionNotFound()
    connection = hot_sql.connection_by_uid(account_id=account.pk, uid=uid)
    if connection is None:
        raise ConnectionNotFound()
    # The row is the caller's account's (the WHERE says so): hand it the account already loaded,
    # so its time zone (the quota's month) costs no query on the usage hot path.
    connection.account = account
    return connection


def connections_for_account(account, *, status: str | None = None):
    """The account's connections, oldest first (the order they took their seats)."""
    connections = Connection.objects.filter(account=account)
    if status:
        connections = connections.filter(status=status)
    return connections.order_by("created_at", "id")


def usage_month(account, at: datetime | None = None) -> date:
    """The first day of the account's LOCAL calendar month of `at` (default: now): the key of a
    usage row. "This month" for invoice quotas is the account's local month (SPEC 8), so a
    Samoan shop's quota starts again at midnight in Apia on the 1st. The one place that decides
    the quota's month: whoever owns the count (connection, or account and tier) keys it by this."""
    return month_start(at or clock.now(), account.time_zone)


def invoice_limit(connection: Connection) -> int:
    """Invoices the connection may sync per calendar month: its tier's quota, or the trial's."""
    if connection.tier == ConnectionTier.TRIAL:
        return settings.TRIAL_INVOICES_PER_MONTH
    return settings.TIER_QUOTAS[connection.tier][0]


def invoices_this_month(connection: Connection) -> int:
    used = (
        ConnectionUsage.objects.filter(connection=connection, month=usage_month(connection.account))
        .values_list("invoices", flat=True)
        .first()
    )
    return used or 0


def invoices_this_month_by_connection(account) -> dict[int, int]:
    """{connection id: invoices this month} for every connection of the account with usage — one query."""
    rows = ConnectionUsage.objects.filter(connection__account=account, month=usage_month(account)).values_list(
        "connection_id", "invoices"
    )
    return dict(rows)
