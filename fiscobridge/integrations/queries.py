"""Reads of an account's connections and the monthly invoice usage of its tiers — always from the
account first."""

from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings

from fiscobridge.core import clock
from fiscobridge.core.ids import is_uid
from fiscobridge.core.localtime import month_start
from fiscobridge.integrations import hot_sql
from fiscobridge.integrations.errors import ConnectionNotFound
from fiscobridge.integrations.models import Connection, ConnectionTier, InvoiceUsage
from fiscobridge.subscriptions.capacity import int_capacity_by_tier, trial_allowance


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


def tier_quota(tier: str) -> int:
    """Invoices per connection per month on this tier (the trial's allowance for `trial`)."""
    if tier == ConnectionTier.TRIAL:
        return settings.TRIAL_INVOICES_PER_MONTH
    return settings.TIER_QUOTAS[tier][0]


@dataclass(frozen=True)
class TierMonth:
    """This month's invoices of one of the account's tiers (or the trial) against its limit: the
    quota per connection times the tier's seats (the trial: its allowance while no paid
    Integrations seat is active). A limit of 0 means the tier is not available: its connections
    may not sync (`no_active_subscription`)."""

    tier: str
    used: int
    limit: int

    @property
    def available(self) -> bool:
        return self.limit > 0

    @property
    def percent(self) -> int:
        """Share of the limit used, 0–100 (for the meter)."""
        if not self.limit:
            return 0
        return min(100, self.used * 100 // self.limit)

    @property
    def warn_at(self) -> int:
        """The count from which the month is nearly used up (the meter turns to a warning)."""
        return -(-self.limit * settings.INVOICE_WARNING_PERCENT // 100)

    @property
    def meter_high(self) -> int:
        """The meter's `high`: below it a nearly used-up month is amber, at the limit red."""
        return max(self.warn_at, self.limit - 1)

    @property
    def tier_label(self) -> str:
        return ConnectionTier(self.tier).label

    @property
    def nearly_used_up(self) -> bool:
        """At or past the warning share (INVOICE_WARNING_PERCENT, 80 %) of an available limit."""
        return self.available and self.used * 100 >= self.limit * settings.INVOICE_WARNING_PERCENT

    @property
    def used_up(self) -> bool:
        return self.available and self.used >= self.limit


def invoice_limits(account, at: datetime | None = None) -> dict[str, int]:
    """{tier: this month's invoice limit} for every tier and the trial — one query."""
    seats = int_capacity_by_tier(account, at or clock.now())
    limits = {tier: tier_quota(tier) * count for tier, count in seats.items()}
    limits[ConnectionTier.TRIAL] = tier_quota(ConnectionTier.TRIAL) if trial_allowance(seats) else 0
    return limits


def usage_by_tier(account, at: datetime | None = None) -> dict[str, TierMonth]:
    """{tier: TierMonth} for every tier and the trial, this (local) month — two queries."""
    moment = at or clock.now()
    used = dict(
        InvoiceUsage.objects.filter(account=account, month=usage_month(account, moment)).values_list("tier", "invoices")
    )
    return {
        tier: TierMonth(tier=tier, used=used.get(tier, 0), limit=limit)
        for tier, limit in invoice_limits(account, moment).items()
    }


def usage_of(connection: Connection) -> TierMonth:
    """This month's usage of the connection's tier (shared by the tier's connections)."""
    return usage_by_tier(connection.account)[connection.tier]
