"""The partner dashboard's rolled-up counts, kept in the same transactions as the key changes.

Two tables (keys/models.py), so that the dashboard reads a few rows instead of every key:

- `KeyBatchCounts`, one row per batch: its keys available (stored state; shown as *expired* when
  the batch is past its redeem-by), activated (not voided), revoked and voided;
- `ActivationHour`, one row per partner and UTC hour with at least one activation.

Issuing, revoking and voiding change a batch's counts row in their own transaction, as its last
statement (the row is shared by the batch's keys: its lock is then held only until the commit).

An activation, the frequent change, inserts a `PendingActivation` row instead: updating the two
shared rows made every activation of a partner wait for the one before it to commit (a third of
the activations per second at 8 clients, and most of their p99; bench/README.md). The worker
folds the pending rows into the counts and hours every minute (`fold_pending`), and the
dashboard adds the pending rows when it reads (partners/dashboard.py, in one snapshot), so its
figures are exact at any moment. A counts row therefore means "the batch's keys, with the
activations still pending counted as available".

`rebuild()` recomputes everything from the keys: the data migration, the benchmark loader and
operators use it; it can run on a live system.
"""

import logging
from collections import Counter
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.models import Case, Count, F, Q, Sum, Value, When
from django.db.models.functions import TruncHour

from fiscobridge.core import clock
from fiscobridge.core.hot_sql import insert_sql
from fiscobridge.keys.models import (
    ActivationHour,
    ActivationKey,
    KeyBatchCounts,
    KeyDisplayStatus,
    PendingActivation,
)
from fiscobridge.keys.queries import display_status_counts

log = logging.getLogger(__name__)

COUNTS = KeyBatchCounts._meta.db_table
HOURS = ActivationHour._meta.db_table
PENDING = PendingActivation._meta.db_table
FOLD_ROWS = 5000  # pending rows per fold transaction

# Counts activations in their partner's hour; the first of an hour creates the row. One
# statement on SQLite (3.24+) and PostgreSQL; concurrent ones wait for the row, never lose a count.
_COUNT_ACTIVATIONS = (
    f"INSERT INTO {HOURS} (partner_id, hour, activations) VALUES (%s, %s, %s) "
    f"ON CONFLICT (partner_id, hour) DO UPDATE SET activations = {HOURS}.activations + excluded.activations"
)
# The pending rows a fold takes, oldest first: deleted and returned in one statement, so that two
# folds at once (two workers) never both take a row.
_TAKE_PENDING = (
    f"DELETE FROM {PENDING} WHERE id IN (SELECT id FROM {PENDING} ORDER BY id LIMIT %s) "
    "RETURNING batch_id, partner_id, hour"
)


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour of `moment`: the bucket an activation at that moment counts in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def batch_issued(*, batch_id: int, quantity: int) -> None:
    """A new batch: all its keys are available."""
    KeyBatchCounts.objects.create(batch_id=batch_id, available_keys=quantity)


def activation_statements(*, partner_id: int, batch_id: int, activated_at: datetime) -> list[tuple[str, list]]:
    """One key of the batch went from available to activated at `activated_at`: the statement
    (one INSERT of a pending row, no shared row) for the activation's transaction to send with
    its other final writes in one round trip."""
    pending = PendingActivation(partner_id=partner_id, batch_id=batch_id, hour=hour_of(activated_at))
    return [insert_sql([pending])]


def fold_pending(*, rows: int = FOLD_ROWS) -> int:
    """Add the pending activations to the counts and hours (the worker, every minute), `rows` per
    transaction until none is left; returns how many were folded."""
    folded = 0
    while True:
        taken = _fold_some(rows)
        folded += taken
        if taken < rows:
            return folded


def _fold_some(rows: int) -> int:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_TAKE_PENDING, [rows])
            taken = cursor.fetchall()
        per_batch = Counter(batch_id for batch_id, _, _ in taken)
        per_hour = Counter((partner_id, hour) for _, partner_id, hour in taken)
        # Counts, then hours, each in id order: two folds at once lock rows in one order.
        for batch_id, n in sorted(per_batch.items()):
            _shift(batch_id, available_keys=-n, activated_keys=n)
        with connection.cursor() as cursor:
            for (partner_id, hour), n in sorted(per_hour.items()):
                cursor.execute(_COUNT_ACTIVATIONS, [partner_id, hour, n])
    return len(taken)


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
    this transaction's change (a fold's taken rows included: they are deleted, so not pending)."""
    changes = {field: F(field) + delta for field, delta in deltas.items()}
    if KeyBatchCounts.objects.filter(batch_id=batch_id).update(**changes):
        return
    log.warning("keys rollup: batch %s had no counts; counted from its keys", batch_id)
    counted = _insert_counts(
        KeyBatchCounts, ActivationKey.objects.filter(batch_id=batch_id), pending_table=PENDING, on_conflict=True
    )
    if not counted:
        # A concurrent transaction created the row first, from a count that did not see our change.
        KeyBatchCounts.objects.filter(batch_id=batch_id).update(**changes)


def _insert_counts(counts_model, keys, *, pending_table=None, on_conflict=False) -> int:
    """INSERT … SELECT the counts of every batch of `keys`, counted by the database in one
    statement whatever their number; returns the rows inserted. With `pending_table`, the
    activations still pending there count as available (what a counts row means), read in the
    same statement as the keys, so that each is counted exactly once, by its fold."""
    per_batch = keys.values("batch_id").annotate(**display_status_counts(clock.now())).order_by()
    select, params = per_batch.query.sql_with_params()
    pending = f"(SELECT COUNT(*) FROM {pending_table} p WHERE p.batch_id = c.batch_id)" if pending_table else "0"
    sql = (
        f"INSERT INTO {counts_model._meta.db_table} "
        "(batch_id, available_keys, activated_keys, revoked_keys, voided_keys) "
        # Stored states: an available key past its redeem-by is still available here.
        f"SELECT c.batch_id, c.available + c.expired + {pending}, c.activated - {pending}, c.revoked, c.voided "
        f"FROM ({select}) c WHERE 1 = 1"  # WHERE: SQLite would read ON CONFLICT as a join's ON
        + (" ON CONFLICT (batch_id) DO NOTHING" if on_conflict else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def rebuild(partner=None) -> None:
    """Recompute the rollup of `partner` (all partners if None) from the keys, in one transaction.

    Safe while keys change: on PostgreSQL it first locks the rollup tables against writes
    (SHARE ROW EXCLUSIVE; the pending rows first, as a fold takes them first), which waits for
    the transactions that already wrote their change to commit, then reads the keys. A change
    that has not reached its rollup statement yet waits for the rebuild, then adds its delta to
    the recounted rows. Activations, revocations, issues and folds of every partner wait
    meanwhile (about a second per million keys); SQLite writers are serialised anyway.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {PENDING}, {COUNTS}, {HOURS} IN SHARE ROW EXCLUSIVE MODE")
        recount(
            key_model=ActivationKey,
            counts_model=KeyBatchCounts,
            hour_model=ActivationHour,
            pending_model=PendingActivation,
            partner_id=getattr(partner, "pk", partner),
        )


def recount(*, key_model, counts_model, hour_model, pending_model=None, partner_id=None) -> None:
    """The work of `rebuild`, on the models given (the data migration passes its historical
    models, from before pending rows existed): replaces the rollup rows of one partner, or of
    all, with counts of the keys, which hold every activation, so pending rows are dropped."""
    keys, counts, hours = key_model.objects.all(), counts_model.objects.all(), hour_model.objects.all()
    pending = pending_model.objects.all() if pending_model is not None else None
    if partner_id is not None:
        keys, counts, hours = (
            keys.filter(partner_id=partner_id),
            counts.filter(batch__partner_id=partner_id),
            hours.filter(partner_id=partner_id),
        )
        pending = pending.filter(partner_id=partner_id) if pending is not None else None
    counts.delete()
    hours.delete()
    if pending is not None:
        pending.delete()
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
