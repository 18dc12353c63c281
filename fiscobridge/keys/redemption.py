"""Validate and activate: the checks of SPEC 2.5, in order, and the race-free redemption.

The hot path of the API (bench/README.md). Statements per request, PostgreSQL (SQLite runs the
attempt and its events as two), pinned by tests/test_hot_paths.py:

- validate: one statement reads the lockout (row 1), the key (rows 4 and 5 from one row) and, for
  its product and tier, the capacity and the renewal options; then the attempt with its event;
- activate: one transaction: the conditional UPDATE … RETURNING that checks the lockout and
  decides the race, the subscription, then together the attempt with its two audit events, the
  e-mail task and the partner's rollup (keys/rollup.py);
- a failure (row 5) also counts on the three failure counters, in its transaction.

The key is parsed before any statement: a malformed key needs only the lockout check.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from fiscobridge.audit.actions import redemption_action
from fiscobridge.audit.models import Event
from fiscobridge.audit.services import event_fields
from fiscobridge.core import clock, metrics
from fiscobridge.core.crypto import keyed_hash
from fiscobridge.core.errors import DomainError
from fiscobridge.core.hot_sql import insert_sql
from fiscobridge.core.ids import is_storable_id
from fiscobridge.keys import hot_sql, rollup
from fiscobridge.keys.codes import KeyFormatError, code_digest, parse_key
from fiscobridge.keys.errors import (
    AlreadyActivated,
    InvalidKeyFormat,
    KeyNotAvailable,
    TooManyAttempts,
    WrongProduct,
)
from fiscobridge.keys.limits import (
    Requester,
    count_failure,
    ensure_not_locked,
    lock_scopes,
    refuse,
)
from fiscobridge.keys.models import ActivationKey, KeyDisplayStatus, RedeemAttempt
from fiscobridge.notifications.outbox import activation_emails_task
from fiscobridge.subscriptions.errors import InvalidRenewal
from fiscobridge.subscriptions.models import Subscription
from fiscobridge.subscriptions.services import (
    RENEWAL_OPTIONS_SHOWN,
    RenewalOption,
    new_key_subscription,
    renewable_subscriptions,
    subscription_created_event,
)
from fiscobridge.tasks.queue import announce
from fiscobridge.webhooks.events import key_activated_statements, listens_sql
from fiscobridge.webhooks.models import EventType


class _NotClaimed(Exception):  # control flow within this module, never seen outside
    """The conditional UPDATE changed nothing: the requester is locked, or rows 4 or 5 apply."""


@dataclass(frozen=True)
class Preview:
    """What a key would grant if activated now (the review step)."""

    key: ActivationKey
    starts_at: datetime
    expires_at: datetime
    seats_total_after: int  # active seats of this product (or tier) once activated now
    renewal_options: list[RenewalOption]


@dataclass
class Outcome:
    """What the attempt's record needs to know about how it ended."""

    code: str = "ok"
    key: ActivationKey | None = None
    events: tuple[dict, ...] = ()  # audit events written with the attempt (an activation's)


def _digest(requester: Requester, raw: str, product: str) -> str:
    """Rows 2 and 3 of SPEC 2.5 (no database needed); returns the key's HMAC for rows 4 and 5.
    A refused input still hears row 1 first: a locked requester is told so, whatever it typed."""
    try:
        parsed = parse_key(raw, default_product=product)
        if parsed.product != product:
            raise WrongProduct(key_product=parsed.product)
    except (KeyFormatError, WrongProduct) as error:
        ensure_not_locked(requester)
        if isinstance(error, WrongProduct):
            raise
        raise InvalidKeyFormat(product=product, problem=error.problem) from None
    return code_digest(parsed.canonical)


def _active_on_account(key: ActivationKey | None, account, moment: datetime) -> bool:
    """Row 4: this very account holds the key (activated here and not voided)."""
    return (
        key is not None
        and key.activated_account_id == account.pk
        and key.display_status_at(moment) == KeyDisplayStatus.ACTIVATED
    )


def _record_attempt(
    requester: Requester, action: str, raw: str, outcome: Outcome, moment: datetime, also=()
) -> list[int]:
    """Store the attempt with its audit events (and `also`, more writes sent with them)."""
    input_hash = keyed_hash("attempt-input", raw[:512])
    attempt = RedeemAttempt(
        at=moment,
        action=action,
        account_id=requester.account.pk,
        user_id=requester.user.pk,
        session_scope=requester.session_scope,
        ip=requester.ip,
        input_hash=input_hash,
        outcome=outcome.code,
        failed=outcome.code == KeyNotAvailable.code,
    )
    events = list(outcome.events)
    if action == "validate" or outcome.code != "ok":
        key = outcome.key
        events.append(
            event_fields(
                action=redemption_action(action, succeeded=outcome.code == "ok"),
                actor=requester.user,
                account=requester.account,
                partner_id=key.partner_id if key else None,
                target=key,
                ip=requester.ip,
                details={"outcome": outcome.code, "input_hash": input_hash},
            )
        )
    return hot_sql.write_attempt(attempt, [Event(at=moment, **fields) for fields in events], also=also)


def _attempt(requester: Requester, action: str, raw: str, run):
    """Run one validate/activate and record it, whatever its outcome; then count the outcome in
    the metrics (in process: no statement added to the hot path)."""
    try:
        result = _recorded_attempt(requester, action, raw, run)
    except DomainError as error:
        metrics.REDEMPTION_FAILURES.labels(action=action, code=error.code).inc()
        raise
    if action == "activate":
        metrics.KEY_ACTIVATIONS.labels(product=result.product).inc()
    return result


def _recorded_attempt(requester: Requester, action: str, raw: str, run):
    raw = raw if isinstance(raw, str) else ""
    try:
        return run()
    except TooManyAttempts:
        raise  # counted on the scope's counter, not stored one row each (SPEC 2.6)
    except KeyNotAvailable as error:
        with transaction.atomic():
            refused = count_failure(requester)  # a limit reached meanwhile: answered as locked
            if refused is None:
                _record_attempt(requester, action, raw, Outcome(error.code), clock.now())
        if refused is not None:
            raise refused from None
        raise
    except DomainError as error:
        _record_attempt(requester, action, raw, Outcome(error.code), clock.now())
        raise


def validate_key(*, requester: Requester, raw: str, product: str) -> Preview:
    """Preview a key: every check of activation, nothing changed."""

    def run() -> Preview:
        digest = _digest(requester, raw, product)
        moment = clock.now()
        facts = hot_sql.key_facts(
            digest=digest,
            account_id=requester.account.pk,
            scopes=lock_scopes(requester),
            moment=moment,
            renewal_limit=RENEWAL_OPTIONS_SHOWN,
        )
        if facts.lock is not None:
            raise refuse(*facts.lock, moment)
        key = facts.key
        if _active_on_account(key, requester.account, moment):
            raise AlreadyActivated()
        if key is None or key.display_status_at(moment) != KeyDisplayStatus.AVAILABLE:
            raise KeyNotAvailable()  # row 5, one path whatever the reason
        preview = Preview(
            key=key,
            starts_at=moment,
            expires_at=clock.add_months(moment, key.months),
            seats_total_after=facts.capacity + key.seats,
            renewal_options=[
                RenewalOption(
                    subscription_id=pk,
                    key_hint=hint,
                    current_expires_at=expires_at,
                    starts_at=expires_at,
                    expires_at=clock.add_months(expires_at, key.months),
                )
                for pk, expires_at, hint in facts.renewable
            ],
        )
        _record_attempt(requester, "validate", raw, Outcome(key=key), moment)
        return preview

    return _attempt(requester, "validate", raw, run)


def activate_key(*, requester: Requester, raw: str, product: str, renew: int | None = None) -> Subscription:
    """Redeem a key for the requester's account and create its subscription, all or nothing."""

    def run() -> Subscription:
        digest = _digest(requester, raw, product)
        try:
            return _redeem(requester, digest, raw, renew)
        except _NotClaimed:
            # Outside the rolled-back transaction: row 1 (a lock is counted as refused), then
            # row 4 (perhaps a concurrent activation of this key on this same account won) or 5.
            ensure_not_locked(requester)
            if _active_on_account(hot_sql.find_key(digest), requester.account, clock.now()):
                raise AlreadyActivated() from None
            raise KeyNotAvailable() from None

    return _attempt(requester, "activate", raw, run)


@transaction.atomic
def _redeem(requester: Requester, digest: str, raw: str, renew: int | None) -> Subscription:
    moment = clock.now()
    account = requester.account
    # One conditional UPDATE decides the race: whichever transaction flips the row from
    # `available` wins; every other one updates nothing, on SQLite and PostgreSQL alike.
    key, reserved_id, webhooks_listen = hot_sql.claim_key(
        digest=digest,
        account_id=account.pk,
        user_id=requester.user.pk,
        moment=moment,
        scopes=lock_scopes(requester),
        also_returning=listens_sql(f"{hot_sql.KEYS}.partner_id", EventType.KEY_ACTIVATED),
    )
    if key is None:
        raise _NotClaimed()
    statements = []  # the final writes, sent together below
    if renew is None and reserved_id is not None:
        subscription = new_key_subscription(key=key, account=account, starts_at=moment)
        subscription.pk = reserved_id
        statements.append(insert_sql([subscription], with_id=True))
    else:
        target = _renewal_target(requester, key, renew, moment) if renew is not None else None
        subscription = _create_subscription(key, account, target, moment)
    events = (
        event_fields(
            **subscription_created_event(subscription=subscription, actor=requester.user, ip=requester.ip, renews=renew)
        ),
        event_fields(
            action="key.activated",
            actor=requester.user,
            account=account,
            partner_id=key.partner_id,
            target=key,
            ip=requester.ip,
            details={"subscription": subscription.pk, "renews": renew},
        ),
    )
    # Last, in one round trip: (the subscription,) the attempt, its events, the e-mail task (it
    # exists exactly when the activation commits) and the activation's pending row of the
    # partner's dashboard rollup (keys/rollup.py).
    emails = activation_emails_task(subscription=subscription)
    if emails is not None:
        statements.append(insert_sql([emails]))
    # The partner's webhook event, its deliveries and their task, in this same round trip, if the
    # claim saw an endpoint listening; each is still written only if one listens then
    # (webhooks/events.py). A partner without webhooks costs nothing more here.
    webhook_task = None
    if webhooks_listen:
        webhook, webhook_task = key_activated_statements(key=key, subscription=subscription, account=account)
        statements += webhook  # the task's statement, when there is one, comes last
    webhook_task_at = len(statements) - 1
    statements += rollup.activation_statements(partner_id=key.partner_id, batch_id=key.batch_id, activated_at=moment)
    counts = _record_attempt(requester, "activate", raw, Outcome(key=key, events=events), moment, also=statements)
    subscription._state.adding = False
    if emails is not None:
        announce(emails)
    if webhook_task is not None and counts[webhook_task_at]:
        announce(webhook_task)
    return subscription


def _renewal_target(requester: Requester, key: ActivationKey, renew, moment: datetime) -> Subscription:
    target = None
    if is_storable_id(renew):
        target = (
            renewable_subscriptions(account=requester.account, product=key.product, tier=key.tier, at=moment)
            .filter(pk=renew)
            .first()
        )
    if target is None:
        raise InvalidRenewal(details={"renew": renew})
    return target


def _create_subscription(key: ActivationKey, account, target: Subscription | None, moment: datetime) -> Subscription:
    if target is None:
        subscription = new_key_subscription(key=key, account=account, starts_at=moment)
        hot_sql.insert_returning_id(subscription)
        return subscription
    subscription = new_key_subscription(key=key, account=account, starts_at=target.expires_at, renews=target)
    try:
        # The unique `renews` column lets only one key continue a given subscription; the
        # savepoint is taken only for a renewal, the one case that can meet that conflict.
        with transaction.atomic():
            hot_sql.insert_returning_id(subscription)
            return subscription
    except IntegrityError:
        raise InvalidRenewal(details={"renew": target.pk}) from None
