"""Validate and activate: the checks of SPEC 2.5, in order, and the race-free redemption."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from fiscobridge.audit.actions import redemption_action
from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.core.crypto import keyed_hash
from fiscobridge.core.errors import DomainError
from fiscobridge.core.ids import is_storable_id
from fiscobridge.keys.codes import KeyFormatError, code_digest, parse_key
from fiscobridge.keys.errors import (
    AlreadyActivated,
    InvalidKeyFormat,
    KeyNotAvailable,
    TooManyAttempts,
    WrongProduct,
)
from fiscobridge.keys.limits import Requester, count_failure, ensure_not_locked
from fiscobridge.keys.models import ActivationKey, KeyStatus, RedeemAttempt
from fiscobridge.keys.rollup import key_activated
from fiscobridge.notifications.outbox import queue_activation_emails
from fiscobridge.subscriptions.capacity import int_capacity_by_tier, pos_capacity
from fiscobridge.subscriptions.errors import InvalidRenewal
from fiscobridge.subscriptions.models import Product, Subscription
from fiscobridge.subscriptions.services import (
    RenewalOption,
    create_key_subscription,
    renewable_subscriptions,
    renewal_options,
)


@dataclass(frozen=True)
class Preview:
    """What a key would grant if activated now (the review step)."""

    key: ActivationKey
    starts_at: datetime
    expires_at: datetime
    seats_total_after: int  # active seats of this product (or tier) once activated now
    renewal_options: list[RenewalOption]


def _checked_digest(requester: Requester, raw: str, product: str) -> str:
    """Rows 1–4 of SPEC 2.5; returns the key's HMAC for the lookup of row 5."""
    ensure_not_locked(requester)
    try:
        parsed = parse_key(raw, default_product=product)
    except KeyFormatError as error:
        raise InvalidKeyFormat(product=product, problem=error.problem) from None
    if parsed.product != product:
        raise WrongProduct(key_product=parsed.product)
    digest = code_digest(parsed.canonical)
    if _active_on_account(requester.account, digest):
        raise AlreadyActivated()
    return digest


def _active_on_account(account, digest: str) -> bool:
    return ActivationKey.objects.filter(
        code_hmac=digest, status=KeyStatus.ACTIVATED, activated_account=account, voided_at__isnull=True
    ).exists()


def _record_attempt(
    requester: Requester, action: str, raw: str, outcome: str, key: ActivationKey | None = None
) -> None:
    failed = outcome == KeyNotAvailable.code
    input_hash = keyed_hash("attempt-input", raw[:512])
    RedeemAttempt.objects.create(
        action=action,
        account=requester.account,
        user=requester.user,
        session_scope=requester.session_scope,
        ip=requester.ip,
        input_hash=input_hash,
        outcome=outcome,
        failed=failed,
    )
    if action == "validate" or outcome != "ok":
        record_event(
            action=redemption_action(action, succeeded=outcome == "ok"),
            actor=requester.user,
            account=requester.account,
            partner=key.partner if key else None,
            target=key,
            ip=requester.ip,
            details={"outcome": outcome, "input_hash": input_hash},
        )


def _attempt(requester: Requester, action: str, raw: str, run):
    """Run one validate/activate and record it, whatever its outcome."""
    raw = raw if isinstance(raw, str) else ""
    try:
        result = run()
    except TooManyAttempts:
        raise  # counted on the scope's counter, not stored one row each (SPEC 2.6)
    except KeyNotAvailable as error:
        with transaction.atomic():
            count_failure(requester)  # raises TooManyAttempts when a limit was reached meanwhile
            _record_attempt(requester, action, raw, error.code)
        raise
    except DomainError as error:
        _record_attempt(requester, action, raw, error.code)
        raise
    _record_attempt(requester, action, raw, "ok", key=result.key if action == "validate" else result.activation_key)
    return result


def validate_key(*, requester: Requester, raw: str, product: str) -> Preview:
    """Preview a key: every check of activation, nothing changed."""

    def run() -> Preview:
        digest = _checked_digest(requester, raw, product)
        key = ActivationKey.objects.redeemable().select_related("partner").filter(code_hmac=digest).first()
        if key is None:
            raise KeyNotAvailable()
        starts_at = clock.now()
        current = (
            pos_capacity(requester.account, starts_at)
            if key.product == Product.POS
            else int_capacity_by_tier(requester.account, starts_at)[key.tier]
        )
        return Preview(
            key=key,
            starts_at=starts_at,
            expires_at=clock.add_months(starts_at, key.months),
            seats_total_after=current + key.seats,
            renewal_options=renewal_options(
                account=requester.account, product=key.product, tier=key.tier, months=key.months
            ),
        )

    return _attempt(requester, "validate", raw, run)


def activate_key(*, requester: Requester, raw: str, product: str, renew: int | None = None) -> Subscription:
    """Redeem a key for the requester's account and create its subscription, all or nothing."""

    def run() -> Subscription:
        digest = _checked_digest(requester, raw, product)
        return _redeem(requester, digest, renew)

    return _attempt(requester, "activate", raw, run)


@transaction.atomic
def _redeem(requester: Requester, digest: str, renew: int | None) -> Subscription:
    moment = clock.now()
    # One conditional UPDATE decides the race: whichever transaction flips the row from
    # `available` wins; every other one updates nothing, on SQLite and PostgreSQL alike.
    won = (
        ActivationKey.objects.redeemable(moment)
        .filter(code_hmac=digest)
        .update(
            status=KeyStatus.ACTIVATED,
            activated_account=requester.account,
            activated_at=moment,
            activated_by=requester.user,
        )
    )
    if not won:
        # A concurrent activation of the same key on this same account may have won.
        if _active_on_account(requester.account, digest):
            raise AlreadyActivated()
        raise KeyNotAvailable()
    key = ActivationKey.objects.select_related("partner").get(code_hmac=digest)
    starts_at, target = moment, None
    if renew is not None:
        if not is_storable_id(renew):
            raise InvalidRenewal(details={"renew": renew})
        target = (
            renewable_subscriptions(account=requester.account, product=key.product, tier=key.tier, at=moment)
            .filter(pk=renew)
            .first()
        )
        if target is None:
            raise InvalidRenewal(details={"renew": renew})
        starts_at = target.expires_at
    try:
        # The unique `renews` column lets only one key continue a given subscription.
        with transaction.atomic():
            subscription = create_key_subscription(
                key=key,
                account=requester.account,
                actor=requester.user,
                starts_at=starts_at,
                renews=target,
                ip=requester.ip,
            )
    except IntegrityError:
        raise InvalidRenewal(details={"renew": renew}) from None
    record_event(
        action="key.activated",
        actor=requester.user,
        account=requester.account,
        partner=key.partner,
        target=key,
        ip=requester.ip,
        details={"subscription": subscription.pk, "renews": renew},
    )
    # Outbox rows in this transaction (they exist iff the activation commits); sent after commit.
    queue_activation_emails(subscription=subscription)
    # Last, so the shared rollup rows stay locked only until the commit (keys/rollup.py).
    key_activated(partner_id=key.partner_id, batch_id=key.batch_id, activated_at=moment)
    return subscription
