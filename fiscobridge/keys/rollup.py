"""The partner dashboard's rolled-up counts, kept in the same transactions as the key changes.

Two tables (keys/models.py), so that the dashboard reads a few rows instead of every key:

- `KeyBatchCounts`, one row per batch: its keys available (stored state; shown as *expired* when
  the batch is past its redeem-by), activated (not voided), revoked and voided;
- `ActivationHour`, one row per partner and UTC hour with at least one activation.

Each change of a key's state calls one function here, inside its own transaction, as the LAST
statement(s) before commit: the rows are shared by every key of a batch (and every activation of
a partner in the same hour), so concurrent transactions queue on their row locks, and holding
those locks only from the end of the work to the commit keeps that queue short. Always counts
first, then the hour: one order, no deadlock between two activations.

Each function is one statement (an activation two). `rebuild()` recomputes everything from the
keys: the data migration, the benchmark loader and operators use it; it can run on a live system.
"""

import logging
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.models import Case, Count, F, Q, Sum, Value, When
from django.db.models.functions import TruncHour

from fiscobridge.core import clock
from fiscobridge.keys.models import ActivationHour, ActivationKey, KeyBatchCounts, KeyDisplayStatus
from fiscobridge.keys.queries import display_status_counts

log = logging.getLogger(__name__)

COUNTS = KeyBatchCounts._meta.db_table
HOURS = ActivationHour._meta.db_table

# Counts one activation in its partner's hour; the first activation of an hour creates the row.
# One statement on SQLite (3.24+) and PostgreSQL; concurrent ones wait for the row, never lose a count.
_COUNT_ACTIVATION = (
    f"INSERT INTO {HOURS} (partner_id, hour, activations) VALUES (%s, %s, 1) "
    f"ON CONFLICT (partner_id, hour) DO UPDATE SET activations = {HOURS}.activations + 1"
)


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour of `moment`: the bucket an activation at that moment counts in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def batch_issued(*, batch_id: int, quantity: int) -> None:
    """A new batch: all its keys are available."""
    KeyBatchCounts.objects.create(batch_id=batch_id, available_keys=quantity)


def activation_statements(*, partner_id: int, batch_id: int, activated_at: datetime) -> list[tuple[str, list]]:
    """One key of the batch went from available to activated at `activated_at`: the two
    statements (batch counts, then the hour) for the activation's transaction to send LAST, with
    its other final writes in one round trip (the rows are shared: see the module's note); it
    then calls `after_activation` with the rows the first one changed."""
    return [
        (
            f"UPDATE {COUNTS} SET available_keys = available_keys - 1, activated_keys = activated_keys + 1 "
            "WHERE batch_id = %s",
            [batch_id],
        ),
        (_COUNT_ACTIVATION, [partner_id, connection.ops.adapt_datetimefield_value(hour_of(activated_at))]),
    ]


def after_activation(*, batch_counted: int, batch_id: int) -> None:
    """A batch without counts (its keys were written around the services) is counted from its
    keys, this activation included."""
    if not batch_counted:
        _shift(batch_id, available_keys=-1, activated_keys=1)


def key_revoked(*, batch_id: int) -> None:
    """One available key of the batch (expired ones too) was revoked."""
    _shift(batch_id, available_keys=-1, revoked_keys=1)


def key_voided(*, batch_id: int) -> None:
    """One activated key of the batch was voided (its activation stays counted in its hour)."""
    _shift(batch_id, activated_keys=-1, voided_keys=1)


def display_status_sums(at: datetime) -> dict[str, Sum]:
    """Aggregates over `KeyBatchCounts` rows: how many keys are in each display status at `at`.

    The rule of `display_status_filters`, per batch: a batch's available keys are *expired* once
    it is past its redeem-by (its keys carry that same redeem-by). tests/test_dashboard_rollup.py
    proves these sums equal the keys counted with the filters.
    """
    past = Q(batch__redeem_by__lte=at)
    return {
        str(KeyDisplayStatus.AVAILABLE): Sum(Case(When(past, then=Value(0)), default=F("available_keys"))),
        str(KeyDisplayStatus.ACTIVATED): Sum("activated_keys"),
        str(KeyDisplayStatus.REVOKED): Sum("revoked_keys"),
        str(KeyDisplayStatus.EXPIRED): Sum(Case(When(past, then=F("available_keys")), default=Value(0))),
        str(KeyDisplayStatus.VOIDED): Sum("voided_keys"),
    }


def _shift(batch_id: int, **deltas: int) -> None:
    """Add `deltas` to the batch's counts: one UPDATE. A batch without counts (its keys were
    written around the services) is counted from its keys instead — a count that already holds
    this transaction's change."""
    changes = {field: F(field) + delta for field, delta in deltas.items()}
    if KeyBatchCounts.objects.filter(batch_id=batch_id).update(**changes):
        return
    log.warning("keys rollup: batch %s had no counts; counted from its keys", batch_id)
    counted = _insert_counts(KeyBatchCounts, ActivationKey.objects.filter(batch_id=batch_id), on_conflict=True)
    if not counted:
        # A concurrent transaction created the row first, from a count that did not see our change.
        KeyBatchCounts.objects.filter(batch_id=batch_id).update(**changes)


def _insert_counts(counts_model, keys, *, on_conflict=False) -> int:
    """INSERT … SELECT the counts of every batch of `keys`, counted by the database in one
    statement whatever their number; returns the rows inserted."""
    per_batch = keys.values("batch_id").annotate(**display_status_counts(clock.now())).order_by()
    select, params = per_batch.query.sql_with_params()
    sql = (
        f"INSERT INTO {counts_model._meta.db_table} "
        "(batch_id, available_keys, activated_keys, revoked_keys, voided_keys) "
        # Stored states: an available key past its redeem-by is still available here.
        "SELECT c.batch_id, c.available + c.expired, c.activated, c.revoked, c.voided "
        f"FROM ({select}) c WHERE 1 = 1"  # WHERE: SQLite would read ON CONFLICT as a join's ON
        + (" ON CONFLICT (batch_id) DO NOTHING" if on_conflict else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def rebuild(partner=None) -> None:
    """Recompute the rollup of `partner` (all partners if None) from the keys, in one transaction.

    Safe while keys change: on PostgreSQL it first locks both rollup tables against writes
    (SHARE ROW EXCLUSIVE), which waits for the transactions that already counted their change
    to commit, then reads the keys. A change that has not reached its rollup statement yet waits
    for the rebuild, then adds its delta to the recounted rows. Activations, revocations and
    issues of every partner wait meanwhile (about a second per million keys); SQLite writers
    are serialised anyway.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {COUNTS}, {HOURS} IN SHARE ROW EXCLUSIVE MODE")
        recount(
            key_model=ActivationKey,
            counts_model=KeyBatchCounts,
            hour_model=ActivationHour,
            partner_id=getattr(partner, "pk", partner),
        )


def recount(*, key_model, counts_model, hour_model, partner_id=None) -> None:
    """The work of `rebuild`, on the models given (the data migration passes its historical
    models): replaces the rollup rows of one partner, or of all, with counts of the keys."""
    keys, counts, hours = key_model.objects.all(), counts_model.objects.all(), hour_model.objects.all()
    if partner_id is not None:
        keys, counts, hours = (
            keys.filter(partner_id=partner_id),
            counts.filter(batch__partner_id=partner_id),
            hours.filter(partner_id=partner_id),
        )
    counts.delete()
    hours.delete()
    _insert_counts(counts_model, keys)
    per_hour = (
        keys.filter(activated_at__isnull=False)
        .annotate(bucket=TruncHour("activated_at", tzinfo=UTC))
        .values("partner_id", "bucket")
        .annotate(n=Count("*"))
        .order_by()
    )
    select, params = per_hour.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {hour_model._meta.db_table} (partner_id, hour, activations) "
            f"SELECT h.partner_id, h.bucket, h.n FROM ({select}) h",
            params,
        )
