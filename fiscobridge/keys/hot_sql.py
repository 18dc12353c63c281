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
from fiscobridge.core.hot_sql import from_db, insert_sql, run_together, to_db
from fiscobridge.keys.models import ActivationKey, FailureCounter, KeyStatus, RedeemAttempt
from fiscobridge.subscriptions.hot_sql import SUBSCRIPTIONS, active_seats, renewable_json

COUNTERS = FailureCounter._meta.db_table
KEYS = ActivationKey._meta.db_table


@dataclass(frozen=True)
class Counter:
    id: int
    scope: str
    failures: int
    failure_limit: int
    locked_until: datetime | None


def _locked_now(scopes: list[tuple[str, str]], moment: datetime) -> tuple[str, list]:
    """SQL condition (and its parameters) on the counters: one of `scopes`, locked at `moment`."""
    match = " OR ".join(["(scope = %s AND scope_key = %s)"] * len(scopes))
    return f"locked_until > %s AND ({match})", [to_db(moment), *(value for pair in scopes for value in pair)]


def locked_counters(scopes: list[tuple[str, str]], *, moment: datetime) -> list[tuple[int, datetime]]:
    """(id, locked_until) of the counters among `scopes` ((scope, scope_key) each) locked now."""
    match, match_params = _locked_now(scopes, moment)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, locked_until FROM {COUNTERS} WHERE {match}", match_params)
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


def claim_key(
    *, digest: str, account_id: int, user_id: int | None, moment: datetime, scopes: list[tuple[str, str]]
) -> tuple[ActivationKey | None, int | None]:
    """The race-deciding conditional UPDATE of SPEC 2.5: flips the key to activated only if the
    requester is not locked out (none of `scopes` locked now) and the key is redeemable now
    (available, not past redeem-by: `ActivationKey.objects.redeemable`); returns it. None when
    the requester is locked, another transaction won, or the key is not redeemable.

    On PostgreSQL it also reserves the id of the subscription to come (a `nextval` of its
    sequence), so that the subscription can be inserted with the transaction's other final
    writes in one round trip; elsewhere the id is None."""
    at = to_db(moment)
    match, match_params = _locked_now(scopes, moment)
    reserve = f", nextval(pg_get_serial_sequence('{SUBSCRIPTIONS}', 'id'))" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {KEYS} SET status = %s, activated_account_id = %s, activated_at = %s, activated_by_id = %s "
            "WHERE code_hmac = %s AND status = %s AND (redeem_by IS NULL OR redeem_by > %s) "
            f"AND NOT EXISTS (SELECT 1 FROM {COUNTERS} WHERE {match}) "
            f"RETURNING {_KEY_SELECT}{reserve}",
            [
                KeyStatus.ACTIVATED,
                account_id,
                at,
                user_id,
                digest,
                KeyStatus.AVAILABLE,
                at,
                *match_params,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None, None
    return _key_from_row(row[: len(KEY_COLUMNS)]), (row[len(KEY_COLUMNS)] if reserve else None)


# --- validate: everything it reads, in one statement -------------------------------------------


@dataclass(frozen=True)
class KeyFacts:
    locked_until: datetime | None  # the latest lock among the requester's counters, if locked now
    key: ActivationKey | None  # the key with this HMAC, whatever its state
    capacity: int  # active seats of the key's product and tier on the account (0 without a key)
    renewable: list[tuple[int, datetime, str]]  # (id, expires_at, key_hint), soonest-ending first


def key_facts(
    *, digest: str, account_id: int, scopes: list[tuple[str, str]], moment: datetime, renewal_limit: int
) -> KeyFacts:
    """What validate needs, in one round trip: the lockout (row 1), the key (rows 4 and 5), and
    for its product and tier the account's capacity and the subscriptions it may renew."""
    match, match_params = _locked_now(scopes, moment)
    seats, seats_params = active_seats(account="%s", product="k.product", tier="k.tier", moment=moment)
    renewable, renewable_params = renewable_json(
        account="%s", product="k.product", tier="k.tier", moment=moment, limit=renewal_limit
    )
    sql = (
        f"SELECT (SELECT MAX(locked_until) FROM {COUNTERS} WHERE {match}), "
        f"{', '.join('k.' + column for column in KEY_COLUMNS)}, {seats}, {renewable} "
        f"FROM (SELECT 1 AS one) AS x LEFT JOIN {KEYS} k ON k.code_hmac = %s"
    )
    params = [*match_params, account_id, *seats_params, account_id, *renewable_params, digest]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    locked_until, key_row, capacity, renewable_text = row[0], row[1:-2], row[-2], row[-1]
    renewable_rows = json.loads(renewable_text) if isinstance(renewable_text, str) else (renewable_text or [])
    options = [(pk, from_db(expires), hint) for pk, expires, hint in renewable_rows]
    options.sort(key=lambda option: (option[1], option[0]))
    return KeyFacts(
        locked_until=from_db(locked_until),
        key=_key_from_row(key_row) if key_row[0] is not None else None,
        capacity=int(capacity or 0),
        renewable=options,
    )


# --- the attempt and its audit events --------------------------------------------------------


def write_attempt(attempt: RedeemAttempt, events: list[Event], *, also: list[tuple[str, list]] = ()) -> list[int]:
    """Store an attempt, its audit events and `also` (more independent writes, e.g. the partner's
    rollup): one round trip on PostgreSQL. Returns the rows each of `also` changed."""
    statements = [insert_sql([attempt])]
    if events:
        statements.append(insert_sql(events))
    counts = run_together([*statements, *also])
    return counts[len(statements) :]


def insert_returning_id(instance) -> None:
    """Insert an unsaved instance (as `save()` would) and set its id: one statement."""
    sql, params = insert_sql([instance])
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING id", params)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
