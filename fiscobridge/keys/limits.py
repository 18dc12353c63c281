"""Failed-attempt limits for validate and activate (SPEC 2.6).

Three layers, each a setting: the session (or API token), the customer account and the client
IP. Only `not_available` answers count as failures. A layer that reaches its limit writes a
Lockout row; every later attempt checks those rows before anything else.

- session: N failures since its previous lock ended → locked for a fixed time from the Nth;
- account and IP: N failures within a sliding window → locked until the window allows again,
  i.e. until the Nth most recent failure leaves the window.
"""

import math
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Max, Q

from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.keys.errors import TooManyAttempts
from fiscobridge.keys.models import Lockout, RedeemAttempt


@dataclass(frozen=True)
class Requester:
    """Who is redeeming: the tenant, the user, the session (or API token) and the client IP."""

    account: object
    user: object
    session_scope: str
    ip: str


def _scopes(requester: Requester) -> list[tuple[str, str]]:
    return [("session", requester.session_scope), ("account", str(requester.account.pk)), ("ip", requester.ip)]


def ensure_not_locked(requester: Requester) -> None:
    moment = clock.now()
    match = Q()
    for scope, key in _scopes(requester):
        match |= Q(scope=scope, scope_key=key)
    until = Lockout.objects.filter(match, until__gt=moment).aggregate(u=Max("until"))["u"]
    if until is not None:
        raise TooManyAttempts(retry_after=max(1, math.ceil((until - moment).total_seconds())))


def _nth_recent_failure(failures, n: int):
    """The time of the n-th most recent failure in `failures`, or None when there are fewer."""
    times = list(failures.order_by("-at").values_list("at", flat=True)[n - 1 : n])
    return times[0] if times else None


def _lock(requester: Requester, scope: str, key: str, until) -> None:
    Lockout.objects.create(scope=scope, scope_key=key, until=until)
    record_event(
        action="redeem.locked_out",
        actor=requester.user,
        account=requester.account,
        ip=requester.ip,
        details={"scope": scope, "until": until.isoformat()},
    )


def lock_if_over_limit(requester: Requester) -> None:
    """Called after a failure was recorded: start whichever lockouts its layers now reach."""
    moment = clock.now()
    failures = RedeemAttempt.objects.filter(failed=True)

    last_session_lock = Lockout.objects.filter(scope="session", scope_key=requester.session_scope).aggregate(
        u=Max("until")
    )["u"]
    session_failures = failures.filter(session_scope=requester.session_scope)
    if last_session_lock is not None:
        session_failures = session_failures.filter(at__gte=last_session_lock)
    if session_failures.count() >= settings.REDEEM_SESSION_FAILURE_LIMIT:
        _lock(
            requester,
            "session",
            requester.session_scope,
            moment + timedelta(seconds=settings.REDEEM_SESSION_LOCK_SECONDS),
        )

    for scope, key, scoped, limit, window in (
        (
            "account",
            str(requester.account.pk),
            failures.filter(account=requester.account),
            settings.REDEEM_ACCOUNT_FAILURE_LIMIT,
            settings.REDEEM_ACCOUNT_WINDOW_SECONDS,
        ),
        (
            "ip",
            requester.ip,
            failures.filter(ip=requester.ip),
            settings.REDEEM_IP_FAILURE_LIMIT,
            settings.REDEEM_IP_WINDOW_SECONDS,
        ),
    ):
        span = timedelta(seconds=window)
        nth = _nth_recent_failure(scoped.filter(at__gt=moment - span), limit)
        if nth is not None:
            _lock(requester, scope, key, nth + span)
