"""Changes of state of Integrations connections: create (spends a seat), remove, report invoice usage."""

import math

from django.conf import settings
from django.db import IntegrityError, transaction

from fiscobridge.accounts.locks import lock_account
from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.core.errors import InvalidInput
from fiscobridge.core.ids import new_uid
from fiscobridge.core.localtime import next_month_start
from fiscobridge.core.text import has_control_characters
from fiscobridge.integrations import hot_sql
from fiscobridge.integrations.errors import (
    ConnectionAlreadyRemoved,
    InvoiceLimitReached,
    NoActiveSubscription,
    TrialNotAvailable,
)
from fiscobridge.integrations.models import (
    Connection,
    ConnectionStatus,
    ConnectionTier,
    ConnectionType,
)
from fiscobridge.integrations.queries import TierMonth, tier_quota, usage_by_tier, usage_month
from fiscobridge.subscriptions.capacity import int_capacity_by_tier, int_trial
from fiscobridge.subscriptions.errors import SeatLimitReached

UID_PREFIX = "K"
NAME_MAX = 200


def _clean_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidInput.for_field("name", f"A name of 1 to {NAME_MAX} characters is required")
    if has_control_characters(name):
        raise InvalidInput.for_field("name", "The name contains a control character")
    return name


def _seats_total(account, tier: str) -> int:
    if tier == ConnectionTier.TRIAL:
        if int_trial(account) is None:
            raise TrialNotAvailable()
        return settings.TRIAL_CONNECTIONS
    return int_capacity_by_tier(account)[tier]


def create_connection(*, account, actor, type: str, tier: str, name: str, ip=None) -> Connection:
    """Create a connection on a free seat of its tier (or the trial), else SeatLimitReached."""
    if type not in ConnectionType.values:
        raise InvalidInput.for_field("type", "Type must be one of: " + ", ".join(ConnectionType.values))
    if tier not in ConnectionTier.values:
        raise InvalidInput.for_field("tier", "Tier must be one of: " + ", ".join(ConnectionTier.values))
    name = _clean_name(name)
    with transaction.atomic():
        # The account lock first, then count: parallel creates queue here, and each one counts
        # the seats in use after the previous one committed (N requests into k seats: k succeed).
        lock_account(account)
        seats_total = _seats_total(account, tier)
        seats_used = Connection.objects.filter(account=account, tier=tier, status=ConnectionStatus.ACTIVE).count()
        if seats_used >= seats_total:
            raise SeatLimitReached(details={"tier": tier, "seats_total": seats_total, "seats_used": seats_used})
        connection = _insert(
            account=account,
            type=type,
            tier=tier,
            name=name,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        record_event(
            action="connection.created",
            actor=actor,
            account=account,
            target=connection,
            ip=ip,
            details={"uid": connection.uid, "type": type, "tier": tier, "name": name},
        )
    return connection


def _insert(**fields) -> Connection:
    # A UID collision (2^50 space) is astronomically rare; retry in a savepoint rather than fail.
    for attempt in range(5):
        try:
            with transaction.atomic():
                return Connection.objects.create(uid=new_uid(UID_PREFIX), **fields)
        except IntegrityError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def remove_connection(*, connection: Connection, actor, ip=None) -> Connection:
    """Stop a connection; its seat is free at once. It cannot be undone."""
    changed = Connection.objects.filter(pk=connection.pk, status=ConnectionStatus.ACTIVE).update(
        status=ConnectionStatus.REMOVED, removed_at=clock.now()
    )
    connection.refresh_from_db()
    if not changed:
        raise ConnectionAlreadyRemoved()
    record_event(
        action="connection.removed",
        actor=actor,
        account=connection.account,
        target=connection,
        ip=ip,
        details={"uid": connection.uid, "type": connection.type, "tier": connection.tier},
    )
    return connection


# One report counts at most this many invoices (the API says 1,000,000): totals stay far from
# the database's integer limit, whatever the seats.
MAX_INVOICES_PER_REPORT = 1_000_000


def record_invoice_usage(*, connection: Connection, invoices: int, ip=None) -> TierMonth:
    """Count `invoices` synced this month on the connection's tier; returns the tier's month.

    The count belongs to the account and tier (SPEC 4.2), so a re-created connection continues
    it. All or nothing: a report that would pass the tier's monthly limit raises
    InvoiceLimitReached (with the seconds until the account's next local month) and counts none
    of its invoices; a connection whose tier (or the trial) is no longer available raises
    NoActiveSubscription. Reports are not audited (one per sync run; the usage row is their
    record): `ip` is accepted so that every service has the same call shape.
    """
    if isinstance(invoices, bool) or not isinstance(invoices, int) or invoices < 1:
        raise InvalidInput.for_field("invoices", "Invoices must be a whole number of at least 1")
    if invoices > MAX_INVOICES_PER_REPORT:
        raise InvalidInput.for_field("invoices", f"At most {MAX_INVOICES_PER_REPORT:,} invoices per report")
    account = connection.account
    moment = clock.now()
    counted = hot_sql.add_invoices(
        connection=connection,
        month=usage_month(account, moment),
        invoices=invoices,
        quota=tier_quota(connection.tier),
        moment=moment,
    )
    if counted is not None:
        used, limit = counted
        return TierMonth(tier=connection.tier, used=used, limit=limit)
    # Nothing counted: say why (a rare path, so it may take a few more reads).
    if not Connection.objects.filter(pk=connection.pk, status=ConnectionStatus.ACTIVE).exists():
        raise ConnectionAlreadyRemoved()
    usage = usage_by_tier(account, moment)[connection.tier]
    if not usage.available:
        raise NoActiveSubscription()
    retry_after = math.ceil((next_month_start(moment, account.time_zone) - moment).total_seconds())
    raise InvoiceLimitReached(retry_after=max(1, retry_after), limit=usage.limit, used=usage.used)
