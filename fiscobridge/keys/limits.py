"""Failed-attempt limits for validate and activate (SPEC 2.6).

Three layers, each a setting: the session (or API token), the customer account and the client
IP. Only `not_available` answers count as failures. Each scope has one FailureCounter row:

- session: N failures in its window (1 hour) → locked for a fixed time from the N-th;
- account and IP: N failures within the window that starts at the first of them → locked until
  that window ends ("until the window allows again");
- a window that ended, or a lock that ended, starts a new window with the next failure.

Exactness under concurrency: a failure first takes the row locks of its three counters (one
upsert, in the fixed order session, account, IP, so two requests never wait on each other in a
circle), then counts itself only if no layer has reached its limit. Whichever request comes after
the N-th failure of a layer sees the limit and is answered `too_many_attempts` instead, on any
number of app servers sharing the database. While a scope is locked its attempts are counted
(`refused`), not stored one row each.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q

from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.keys import hot_sql
from fiscobridge.keys.errors import TooManyAttempts
from fiscobridge.keys.models import FailureCounter, LockScope


@dataclass(frozen=True)
class Requester:
    """Who is redeeming: the tenant, the user, the session (or API token) and the client IP."""

    account: object
    user: object
    session_scope: str
    ip: str


@dataclass(frozen=True)
class ScopeRule:
    scope: str
    key: str
    limit: int
    window: timedelta
    lock: timedelta | None  # None: locked until the window ends


def _rules(requester: Requester) -> list[ScopeRule]:
    """The three layers, in the order their counters are locked."""
    return [
        ScopeRule(
            LockScope.SESSION,
            requester.session_scope,
            settings.REDEEM_SESSION_FAILURE_LIMIT,
            timedelta(seconds=settings.REDEEM_SESSION_WINDOW_SECONDS),
            timedelta(seconds=settings.REDEEM_SESSION_LOCK_SECONDS),
        ),
        ScopeRule(
            LockScope.ACCOUNT,
            str(requester.account.pk),
            settings.REDEEM_ACCOUNT_FAILURE_LIMIT,
            timedelta(seconds=settings.REDEEM_ACCOUNT_WINDOW_SECONDS),
            None,
        ),
        ScopeRule(
            LockScope.IP,
            requester.ip,
            settings.REDEEM_IP_FAILURE_LIMIT,
            timedelta(seconds=settings.REDEEM_IP_WINDOW_SECONDS),
            None,
        ),
    ]


def _too_many(until: datetime, moment: datetime) -> TooManyAttempts:
    return TooManyAttempts(retry_after=max(1, math.ceil((until - moment).total_seconds())))


def _refuse(counter_ids: list[int], until: datetime, moment: datetime) -> TooManyAttempts:
    FailureCounter.objects.filter(pk__in=counter_ids).update(refused=F("refused") + 1)
    return _too_many(until, moment)


def lock_scopes(requester: Requester) -> list[tuple[str, str]]:
    """(scope, scope_key) of the requester's three counters, for statements that check the lock
    together with other reads (keys/hot_sql.py `key_facts`)."""
    return [(rule.scope, rule.key) for rule in _rules(requester)]


def refuse_while_locked(requester: Requester, until: datetime, moment: datetime) -> TooManyAttempts:
    """The answer to an attempt found locked until `until`; counted on the counters locked now."""
    match = Q()
    for scope, key in lock_scopes(requester):
        match |= Q(scope=scope, scope_key=key)
    FailureCounter.objects.filter(match, locked_until__gt=moment).update(refused=F("refused") + 1)
    return _too_many(until, moment)


def ensure_not_locked(requester: Requester) -> None:
    """SPEC 2.5 row 1, in one read of the requester's three counters (and a count when locked)."""
    moment = clock.now()
    locked = hot_sql.locked_counters(lock_scopes(requester), moment=moment)
    if locked:
        raise _refuse([pk for pk, _ in locked], max(until for _, until in locked), moment)


def count_failure(requester: Requester) -> TooManyAttempts | None:
    """Count a `not_available` answer on all three layers, or refuse it when a layer is full.

    Call inside the transaction that records the attempt: the row locks taken here are held
    until it commits. Returns the TooManyAttempts to answer when another request reached a
    limit first (the attempt then does not count, and the refusal is counted); the caller lets
    the transaction commit, then raises it.
    """
    moment = clock.now()
    rules = _rules(requester)
    counters = hot_sql.open_failure_windows(
        [(r.scope, r.key, moment, moment + r.window, r.limit) for r in rules], moment=moment
    )
    full = [c for c in counters if c.failures >= c.failure_limit]
    if full:
        return _refuse([c.id for c in full], max(c.locked_until or moment for c in full), moment)
    session_lock_ends = moment + rules[0].lock
    for counter in hot_sql.add_failure([c.id for c in counters], session_lock_ends=session_lock_ends):
        if counter.locked_until is not None:
            _record_lock(requester, counter.scope, counter.locked_until)
    return None


def _record_lock(requester: Requester, scope: str, until: datetime) -> None:
    record_event(
        action="redeem.locked_out",
        actor=requester.user,
        account=requester.account,
        ip=requester.ip,
        details={"scope": scope, "until": until.isoformat()},
    )
