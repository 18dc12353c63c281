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
from fiscobridge.core.hot_sql import RowReader, from_db, insert_sql, run_together, to_db
from fiscobridge.keys.models import ActivationKey, FailureCounter, KeyStatus, RedeemAttempt
from fiscobridge.subscriptions.hot_sql import SUBSCRIPTIONS, active_seats, renewable_json

COUNTERS = FailureCounter._meta.db_table
KEYS = ActivationKey._meta.db_table


@dataclass(frozen=True)
class Counter:
    id: int
    scope: str
    recent: list[datetime]  # oldest first
    locked_until: datetime | None


def _locked_now(scopes: list[tuple[str, str]], moment: datetime) -> tuple[str, list]:
    """SQL condition (and its parameters) on the counters: one of `scopes`, locked at `moment`."""
    match = " OR ".join(["(scope = %s AND scope_key = %s)"] * len(scopes))
    return f"locked_until > %s AND ({match})", [to_db(moment), *(value for pair in scopes for value in pair)]


def latest_lock(scopes: list[tuple[str, str]], *, moment: datetime) -> tuple[int, datetime] | None:
    """(id, locked_until) of the counter among `scopes` locked longest now, or None."""
    match, match_params = _locked_now(scopes, moment)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, locked_until FROM {COUNTERS} WHERE {match} ORDER BY locked_until DESC LIMIT 1", match_params
        )
        row = cursor.fetchone()
    return (row[0], from_db(row[1])) if row else None


def lock_counters(scopes: list[tuple[str, str]]) -> list[Counter]:
    """The counters of `scopes` ((scope, scope_key) each, in locking order), created if missing
    and locked until the transaction ends: one statement. They come back in the order asked."""
    values = ", ".join(["(%s, %s, %s, 0, NULL, 0)"] * len(scopes))
    params = [value for scope, key in scopes for value in (scope, key, "[]")]
    sql = (
        f"INSERT INTO {COUNTERS} AS c (scope, scope_key, recent, failures, locked_until, refused) VALUES {values} "
        # A no-op update: on a conflict the row is locked and returned as it is.
        "ON CONFLICT (scope, scope_key) DO UPDATE SET refused = c.refused "
        "RETURNING id, scope, scope_key, recent, locked_until"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = {(scope, key): (pk, scope, recent, until) for pk, scope, key, recent, until in cursor.fetchall()}
    counters = []
    for scope, key in scopes:
        pk, scope, recent, until = found[(scope, key)]
        times = json.loads(recent) if isinstance(recent, str) else recent
        counters.append(Counter(pk, scope, [from_db(t) for t in times], from_db(until)))
    return counters


def save_counters(changes: list[tuple[int, list[datetime], datetime | None]]) -> None:
    """Store (id, recent, locked_until) of counters locked by `lock_counters`: one statement."""
    recent = " ".join("WHEN %s THEN %s" for _ in changes)
    count = " ".join("WHEN %s THEN %s" for _ in changes)
    until = " ".join("WHEN %s THEN %s" for _ in changes)
    params = [v for pk, times, _ in changes for v in (pk, json.dumps([t.isoformat() for t in times]))]
    params += [v for pk, times, _ in changes for v in (pk, len(times))]
    params += [v for pk, _, locked in changes for v in (pk, to_db(locked))]
    params += [pk for pk, _, _ in changes]
    # PostgreSQL cannot infer a type through CASE from parameters alone: say it.
    postgres = connection.vendor == "postgresql"
    as_json, as_int, as_time = ("::jsonb", "::integer", "::timestamptz") if postgres else ("", "", "")
    sql = (
        f"UPDATE {COUNTERS} SET recent = (CASE id {recent} END){as_json}, "
        f"failures = (CASE id {count} END){as_int}, locked_until = (CASE id {until} END){as_time} "
        f"WHERE id IN ({', '.join(['%s'] * len(changes))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# --- keys ------------------------------------------------------------------------------------

# What the rules of SPEC 2.5, the preview, the subscription and the audit read of a key; the
# other columns are deferred on the instances built from these rows.
_KEY = RowReader(
    ActivationKey,
    [
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
        "activated_at",
        "activated_account_id",
        "voided_at",
    ],
)
KEY_COLUMNS = _KEY.columns
_KEY_SELECT = ", ".join(KEY_COLUMNS)


def _key_from_row(row) -> ActivationKey:
    return _KEY.build(row)


def find_key(digest: str) -> ActivationKey | None:
    """The key with this HMAC, whatever its state (the caller applies SPEC 2.5 rows 4 and 5)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_KEY_SELECT} FROM {KEYS} WHERE code_hmac = %s", [digest])
        row = cursor.fetchone()
    return _key_from_row(row) if row else None


def claim_key(
    *,
    digest: str,
    account_id: int,
    user_id: int | None,
    moment: datetime,
    scopes: list[tuple[str, str]],
    also_returning: tuple[str, list] | None = None,
) -> tuple[ActivationKey | None, int | None, object]:
    """The race-deciding conditional UPDATE of SPEC 2.5: flips the key to activated only if the
    requester is not locked out (none of `scopes` locked now) and the key is redeemable now
    (available, not past redeem-by: `ActivationKey.objects.redeemable`); returns it. None when
    the requester is locked, another transaction won, or the key is not redeemable.

    On PostgreSQL it also reserves the id of the subscription to come (a `nextval` of its
    sequence), so that the subscription can be inserted with the transaction's other final
    writes in one round trip; elsewhere the id is None.

    `also_returning` is one more expression (SQL and parameters) read about the claimed row in
    the same statement, e.g. whether its partner listens to webhooks (it names the row's columns
    as `{KEYS}.column`); its value comes third (None when nothing was claimed or asked)."""
    at = to_db(moment)
    match, match_params = _locked_now(scopes, moment)
    reserve = f", nextval(pg_get_serial_sequence('{SUBSCRIPTIONS}', 'id'))" if connection.vendor == "postgresql" else ""
    also_sql, also_params = also_returning or ("NULL", [])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {KEYS} SET status = %s, activated_account_id = %s, activated_at = %s, activated_by_id = %s "
            "WHERE code_hmac = %s AND status = %s AND (redeem_by IS NULL OR redeem_by > %s) "
            f"AND NOT EXISTS (SELECT 1 FROM {COUNTERS} WHERE {match}) "
            f"RETURNING {_KEY_SELECT}{reserve}, {also_sql}",
            [
                KeyStatus.ACTIVATED,
                account_id,
                at,
                user_id,
                digest,
                KeyStatus.AVAILABLE,
                at,
                *match_params,
                *also_params,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None, None, None
    reserved = row[len(KEY_COLUMNS)] if reserve else None
    return _key_from_row(row[: len(KEY_COLUMNS)]), reserved, row[-1]


# --- validate: everything it reads, in one statement -------------------------------------------


@dataclass(frozen=True)
class KeyFacts:
    lock: tuple[int, datetime] | None  # (counter id, until) of the requester's longest lock now, if any
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
        f"SELECT (SELECT id FROM {COUNTERS} WHERE {match} ORDER BY locked_until DESC LIMIT 1), "
        f"(SELECT MAX(locked_until) FROM {COUNTERS} WHERE {match}), "
        f"{', '.join('k.' + column for column in KEY_COLUMNS)}, {seats}, {renewable} "
        f"FROM (SELECT 1 AS one) AS x LEFT JOIN {KEYS} k ON k.code_hmac = %s"
    )
    params = [*match_params, *match_params, account_id, *seats_params, account_id, *renewable_params, digest]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    lock_id, locked_until, key_row, capacity, renewable_text = row[0], row[1], row[2:-2], row[-2], row[-1]
    renewable_rows = json.loads(renewable_text) if isinstance(renewable_text, str) else (renewable_text or [])
    options = [(pk, from_db(expires), hint) for pk, expires, hint in renewable_rows]
    options.sort(key=lambda option: (option[1], option[0]))
    return KeyFacts(
        lock=(lock_id, from_db(locked_until)) if lock_id is not None else None,
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
