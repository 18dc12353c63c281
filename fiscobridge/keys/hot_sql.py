"""Hand-written SQL of the redemption hot path (validate, activate, failure counters).

Here, and only here, statements are written by hand: where building ORM queries and model
instances cost more than the database work itself (issue 9, bench/README.md), or where the ORM
cannot say it (INSERT … ON CONFLICT DO UPDATE … RETURNING, UPDATE … RETURNING). Every statement
runs on SQLite (3.35+) and PostgreSQL alike; the tests run on both. Times are adapted by
Django's own functions, so stored values are the same as the ORM's.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.utils.dateparse import parse_datetime

from fiscobridge.keys.models import FailureCounter

COUNTERS = FailureCounter._meta.db_table


def to_db(moment: datetime | None):
    return connection.ops.adapt_datetimefield_value(moment)


def from_db(value) -> datetime | None:
    """A datetime read by a raw statement: PostgreSQL gives one, SQLite gives its text."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Counter:
    id: int
    scope: str
    failures: int
    failure_limit: int
    locked_until: datetime | None


def open_failure_windows(rows: list[tuple], *, moment: datetime) -> list[Counter]:
    """Make sure each (scope, key) has a counter with a current window, and lock those rows.

    `rows`: (scope, scope_key, window_start, window_ends_at, failure_limit), in locking order.
    A counter whose window or lock has ended starts a new window at `moment` with no failures.
    One statement; the counters come back in the order asked.
    """
    stale = f"({COUNTERS}.window_ends_at <= excluded.window_start OR {COUNTERS}.locked_until <= excluded.window_start)"
    values = ", ".join(["(%s, %s, %s, %s, 0, %s, NULL, 0)"] * len(rows))
    params = []
    for scope, key, start, ends, limit in rows:
        params += [scope, key, to_db(start), to_db(ends), limit]
    sql = (
        f"INSERT INTO {COUNTERS} AS c "
        "(scope, scope_key, window_start, window_ends_at, failures, failure_limit, locked_until, refused) "
        f"VALUES {values} "
        "ON CONFLICT (scope, scope_key) DO UPDATE SET "
        f"window_start = CASE WHEN {stale} THEN excluded.window_start ELSE {COUNTERS}.window_start END, "
        f"window_ends_at = CASE WHEN {stale} THEN excluded.window_ends_at ELSE {COUNTERS}.window_ends_at END, "
        f"failures = CASE WHEN {stale} THEN 0 ELSE {COUNTERS}.failures END, "
        f"locked_until = CASE WHEN {stale} THEN NULL ELSE {COUNTERS}.locked_until END, "
        "failure_limit = excluded.failure_limit "
        "RETURNING id, scope, scope_key, failures, failure_limit, locked_until"
    ).replace(f"{COUNTERS}.", "c.")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = {(scope, key): (pk, scope, failures, limit, until) for pk, scope, key, failures, limit, until in cursor}
    ordered = [found[(scope, key)] for scope, key, *_ in rows]
    return [Counter(pk, scope, failures, limit, from_db(until)) for pk, scope, failures, limit, until in ordered]


def add_failure(counter_ids: list[int], *, session_lock_ends: datetime) -> list[Counter]:
    """Count one failure on each counter; a counter that reaches its limit locks (the session
    for a fixed time, the others until their window ends). Returns the counters after it."""
    marks = ", ".join(["%s"] * len(counter_ids))
    sql = (
        f"UPDATE {COUNTERS} SET failures = failures + 1, "
        "locked_until = CASE WHEN failures + 1 >= failure_limit "
        "THEN (CASE WHEN scope = 'session' THEN %s ELSE window_ends_at END) ELSE NULL END "
        f"WHERE id IN ({marks}) "
        "RETURNING id, scope, failures, failure_limit, locked_until"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [to_db(session_lock_ends), *counter_ids])
        return [Counter(pk, scope, f, limit, from_db(until)) for pk, scope, f, limit, until in cursor]
