"""Failed-attempt limits for validate and activate (SPEC 2.6).

Three layers, each a setting: the session (or API token), the customer account and the client
IP. Only `not_available` answers count as failures. Each scope has one FailureCounter row
holding the times of its newest failures within the window (sliding):

- session: N failures within its window (1 hour) → locked for a fixed time from the N-th, then
  it counts afresh;
- account and IP: N failures within the window → locked until the oldest of them leaves the
  window ("until the window allows again").

Exactness under concurrency: a failure first takes the row locks of its three counters (one
upsert, in the fixed order session, account, IP, so two requests never wait on each other in a
circle), then counts itself only if no layer is locked or full. Whichever request comes after
the N-th failure of a layer sees the limit and is answered `too_many_attempts` instead, on any
number of app servers sharing the database. While a scope is locked its attempts are counted
(`refused`), not stored one row each.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F

from fiscobridge.audit.services import record_event
from fiscobridge.core import clock, metrics
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


def refuse(counter_id: int, until: datetime, moment: datetime) -> TooManyAttempts:
    """The answer to an attempt refused by the counter `counter_id` (locked until `until`): the
    refusal is counted on that one row (one row, so no two requests wait on each other's)."""
    FailureCounter.objects.filter(pk=counter_id).update(refused=F("refused") + 1)
    return _too_many(until, moment)


def lock_scopes(requester: Requester) -> list[tuple[str, str]]:
    """(scope, scope_key) of the requester's three counters, in locking order, for statements
    that check the lock together with other reads (keys/hot_sql.py `key_facts`)."""
    return [(rule.scope, rule.key) for rule in _rules(requester)]


def ensure_not_locked(requester: Requester) -> None:
    """SPEC 2.5 row 1, in one read of the requester's three counters (and a count when locked)."""
    moment = clock.now()
    lock = hot_sql.latest_lock(lock_scopes(requester), moment=moment)
    if lock is not None:
        raise refuse(*lock, moment)


def count_failure(requester: Requester) -> TooManyAttempts | None:
    """Count a `not_available` answer on all three layers, or refuse it when a layer is full.

    Call inside the transaction that records the attempt: the counters' row locks taken here
    are held until it commits. Returns the TooManyAttempts to answer when another request
    reached a limit first (the attempt then does not count, and the refusal is counted); the
    caller lets the transaction commit, then raises it.
    """
    moment = clock.now()
    rules = _rules(requester)
    counters = hot_sql.lock_counters([(rule.scope, rule.key) for rule in rules])
    windows = [
        [t for t in counter.recent if t > moment - rule.window] for counter, rule in zip(counters, rules, strict=True)
    ]
    blocked = [
        (until, counter.id)
        for counter, rule, recent in zip(counters, rules, windows, strict=True)
        if (until := _blocked_until(counter, rule, recent, moment)) is not None
    ]
    if blocked:
        until, counter_id = max(blocked)
        return refuse(counter_id, until, moment)
    changes = []
    for counter, rule, recent in zip(counters, rules, windows, strict=True):
        recent = [*recent, moment][-rule.limit :]
        locked_until = None
        if len(recent) == rule.limit:
            if rule.lock is not None:  # the session: locked for a fixed time, then counts afresh
                locked_until, recent = moment + rule.lock, []
            else:  # account and IP: until the oldest of these failures leaves the window
                locked_until = recent[0] + rule.window
            _record_lock(requester, rule.scope, locked_until)
        changes.append((counter.id, recent, locked_until))
    hot_sql.save_counters(changes)
    return None


def _blocked_until(counter, rule: ScopeRule, recent: list[datetime], moment: datetime) -> datetime | None:
    """Until when this layer refuses a failure now: its lock, or (when its limit was
    lowered since) the moment its window would allow again; None when it may count one more."""
    if counter.locked_until is not None and counter.locked_until > moment:
        return counter.locked_until
    if len(recent) >= rule.limit:
        return recent[-rule.limit] + rule.window
    return None


def _record_lock(requester: Requester, scope: str, until: datetime) -> None:
    metrics.REDEEM_LOCKOUTS.labels(scope=scope).inc()
    record_event(
        action="redeem.locked_out",
        actor=requester.user,
        account=requester.account,
        ip=requester.ip,
        details={"scope": scope, "until": until.isoformat()},
    )
