"""Hand-written SQL of the redemption hot path (validate, activate, failure counters).

Here, and only here, statements are written by hand: where building ORM queries and model
instances cost more than the database work itself (issue 9, bench/README.md), or where the ORM
cannot say it (INSERT … ON CONFLICT DO UPDATE … RETURNING, UPDATE … RETURNING). Every statement
runs on SQLite (3.35+) and PostgreSQL alike; the tests run on both. Times are adapted by
Django's own functions, so stored values are the same as the ORM's.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from fiscobridge.audit.models import Event
from fiscobridge.core.hot_sql import from_db, to_db
from fiscobridge.keys.models import ActivationKey, FailureCounter, KeyStatus, RedeemAttempt
from fiscobridge.subscriptions.hot_sql import active_seats
from fiscobridge.subscriptions.models import Source, Subscription

COUNTERS = FailureCounter._meta.db_table
KEYS = ActivationKey._meta.db_table
ATTEMPTS = RedeemAttempt._meta.db_table
EVENTS = Event._meta.db_table
SUBSCRIPTIONS = Subscription._meta.db_table


@dataclass(frozen=True)
class Counter:
    id: int
    scope: str
    failures: int
    failure_limit: int
    locked_until: datetime | None


def locked_counters(scopes: list[tuple[str, str]], *, moment: datetime) -> list[tuple[int, datetime]]:
    """(id, locked_until) of the counters among `scopes` ((scope, scope_key) each) locked now."""
    match = " OR ".join(["(scope = %s AND scope_key = %s)"] * len(scopes))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, locked_until FROM {COUNTERS} WHERE locked_until > %s AND ({match})",
            [to_db(moment), *(value for pair in scopes for value in pair)],
        )
        return [(pk, from_db(until)) for pk, until in cursor.fetchall()]


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


# --- keys ------------------------------------------------------------------------------------

KEY_COLUMNS = (
    "id",
    "partner_id",
    "batch_id",
    "product",
    "tier",
    "seats",
    "months",
    "last_group",
    "status",
    "redeem_by",
    "activated_account_id",
    "activated_at",
    "voided_at",
)
_KEY_SELECT = ", ".join(KEY_COLUMNS)


def _key_from_row(row) -> ActivationKey:
    """A key built from a raw row: only the columns above are loaded (enough for the rules of
    SPEC 2.5, the preview, the subscription and the audit)."""
    values = dict(zip(KEY_COLUMNS, row, strict=True))
    for name in ("redeem_by", "activated_at", "voided_at"):
        values[name] = from_db(values[name])
    return ActivationKey(**values)


def find_key(digest: str) -> ActivationKey | None:
    """The key with this HMAC, whatever its state (the caller applies SPEC 2.5 rows 4 and 5)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_KEY_SELECT} FROM {KEYS} WHERE code_hmac = %s", [digest])
        row = cursor.fetchone()
    return _key_from_row(row) if row else None


def claim_key(*, digest: str, account_id: int, user_id: int | None, moment: datetime) -> ActivationKey | None:
    """The race-deciding conditional UPDATE of SPEC 2.5: flips the key to activated only if it is
    redeemable now (available, not past redeem-by: `ActivationKey.objects.redeemable`), and
    returns it; None when another transaction won or the key is not redeemable."""
    at = to_db(moment)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {KEYS} SET status = %s, activated_account_id = %s, activated_at = %s, activated_by_id = %s "
            "WHERE code_hmac = %s AND status = %s AND (redeem_by IS NULL OR redeem_by > %s) "
            f"RETURNING {_KEY_SELECT}",
            [KeyStatus.ACTIVATED, account_id, at, user_id, digest, KeyStatus.AVAILABLE, at],
        )
        row = cursor.fetchone()
    return _key_from_row(row) if row else None


# --- subscriptions ---------------------------------------------------------------------------


def capacity_and_renewals(
    *, account_id: int, product: str, tier: str, moment: datetime, limit: int
) -> tuple[int, list[tuple[int, datetime, str]]]:
    """In one statement: the seats of the account's active subscriptions of this product and
    tier (`subscriptions.capacity`), and up to `limit` key subscriptions a new key may renew,
    soonest-ending first (`subscriptions.services.renewable_subscriptions`): (id, expires_at,
    key_hint) each."""
    at = to_db(moment)
    seats, seats_params = active_seats(account_column="%s", product=product, tier=tier, moment=moment)
    sql = (
        f"SELECT NULL, NULL, NULL, {seats} "
        "UNION ALL SELECT * FROM ("
        f"SELECT s.id, s.expires_at, s.key_hint, CAST(NULL AS BIGINT) FROM {SUBSCRIPTIONS} s "
        "WHERE s.account_id = %s AND s.product = %s AND s.tier = %s AND s.source = %s AND s.expires_at > %s "
        "AND (s.ended_at IS NULL OR s.ended_at > %s) "
        f"AND NOT EXISTS (SELECT 1 FROM {SUBSCRIPTIONS} r WHERE r.renews_id = s.id) "
        "ORDER BY s.expires_at, s.id LIMIT %s) AS renewable"
    )
    params = [account_id, *seats_params, account_id, product, tier, Source.KEY, at, at, limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    capacity = next(int(total) for pk, _, _, total in rows if pk is None)
    options = [(pk, from_db(expires), hint) for pk, expires, hint, _ in rows if pk is not None]
    options.sort(key=lambda option: (option[1], option[0]))
    return capacity, options


# --- the attempt and its audit events --------------------------------------------------------

_ATTEMPT_COLUMNS = ("at", "action", "account_id", "user_id", "session_scope", "ip", "input_hash", "outcome", "failed")
_EVENT_COLUMNS = ("at", "action", "actor_id", "account_id", "partner_id", "target_type", "target_id", "ip", "details")


def _insert(table: str, columns: tuple[str, ...], rows: list[dict]) -> tuple[str, list]:
    marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([marks] * len(rows))}"
    params = [row[column] for row in rows for column in columns]
    return sql, params


def write_attempt(attempt: dict, events: list[dict], *, moment: datetime) -> None:
    """Store a RedeemAttempt and its audit events (`audit.services.event_fields` each): one
    round trip on PostgreSQL (a data-modifying WITH), two statements on SQLite."""
    at = to_db(moment)
    attempt_sql, attempt_params = _insert(ATTEMPTS, _ATTEMPT_COLUMNS, [{**attempt, "at": at}])
    if not events:
        with connection.cursor() as cursor:
            cursor.execute(attempt_sql, attempt_params)
        return
    event_rows = [{**event, "at": at, "details": json.dumps(event["details"])} for event in events]
    events_sql, events_params = _insert(EVENTS, _EVENT_COLUMNS, event_rows)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"WITH attempt AS ({attempt_sql}) {events_sql}", attempt_params + events_params)
        else:
            cursor.execute(attempt_sql, attempt_params)
            cursor.execute(events_sql, events_params)
