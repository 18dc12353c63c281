"""Two-factor sign-in: an authenticator app (TOTP) and single-use recovery codes (django-otp).

A user has at most one confirmed authenticator and one set of recovery codes. An authenticator
being set up is an unconfirmed TOTP device until a code from it is entered; only then is two-
factor sign-in on. Every change here is audited (`two_factor.*`), never with a secret or a code.
"""

import math
import re
import secrets
from base64 import b32encode
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from fiscobridge.accounts.errors import (
    NoAuthenticatorToConfirm,
    TwoFactorCodeInvalid,
    TwoFactorRequired,
    TwoFactorThrottled,
)
from fiscobridge.accounts.models import Partner, User
from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.core.errors import DomainError

AUTHENTICATOR_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"
# A recovery code is 10 characters of the base32 alphabet (50 bits); shown as two groups of five.
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_RECOVERY_LENGTH = 10
SETUP_CODE_INVALID = "That code is not right. Enter the 6-digit code your authenticator app shows now."
_TOTP_SHAPE = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class RecoveryCodes:
    codes: list[str]  # shown once, as `xxxxx-xxxxx`; only django-otp's token rows keep them


def two_factor_required(user: User) -> bool:
    """Staff always; a partner's users when the partner says so; customers never (they may opt in)."""
    if user.is_staff:
        return True
    if user.partner_id:
        return user.partner.require_two_factor
    return False


def confirmed_authenticator(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def pending_authenticator(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).first()


def has_two_factor(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def recovery_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def secret_for_display(device: TOTPDevice) -> str:
    """The secret in base32, grouped by four, for typing into an app that cannot scan."""
    text = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def _audit(action: str, *, user: User, actor: User | None = None, details: dict | None = None, ip=None) -> None:
    record_event(
        action=action,
        actor=actor or user,
        account=user.account,
        partner=user.partner,
        target=user,
        ip=ip,
        details=details,
    )


@transaction.atomic
def start_authenticator_setup(*, user: User) -> TOTPDevice:
    """The authenticator being set up: the one already started, or a new one with a fresh secret.

    A confirmed authenticator stays in use until the new one is confirmed, so replacing a phone
    never leaves the user without a second factor."""
    device = pending_authenticator(user)
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
    return device


@transaction.atomic
def cancel_authenticator_setup(*, user: User) -> None:
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()


def _new_recovery_codes(user: User) -> RecoveryCodes:
    """Replaces the user's recovery codes with new ones (in the caller's transaction)."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    plain = [
        "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        for _ in range(settings.TWO_FACTOR_RECOVERY_CODES)
    ]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in plain])
    return RecoveryCodes(codes=[f"{code[:5]}-{code[5:]}" for code in plain])


def _digits(token: str) -> str:
    return re.sub(r"\s", "", token or "")


def _recovery_form(token: str) -> str:
    # Only the code's own alphabet survives: spaces and the dash as typed, and anything a query
    # cannot hold (a NUL byte on PostgreSQL) never reach the database.
    return re.sub(r"[^a-z2-7]", "", (token or "").lower())[:16]


def _throttled(device: Device) -> TwoFactorThrottled | None:
    allowed, data = device.verify_is_allowed()
    if allowed:
        return None
    locked_until = (data or {}).get("locked_until")
    seconds = max(1, math.ceil((locked_until - clock.now()).total_seconds())) if locked_until else 1
    return TwoFactorThrottled(retry_after=seconds)


def _try_device(model, device_pk: int, token: str) -> DomainError | None:
    """Checks `token` against one device, its row locked so that one code is not spent twice by
    two requests at once. Commits before the caller raises: a wrong code's throttling (django-otp
    doubles the wait after each: 1 s, 2 s, 4 s, …) must outlive the error it causes."""
    with transaction.atomic():
        device = model.objects.select_for_update().get(pk=device_pk)
        if error := _throttled(device):
            return error
        return None if device.verify_token(token) else TwoFactorCodeInvalid()


def _check_code(*, user: User, token: str, ip: str | None, totp: TOTPDevice | None = None) -> Device:
    """The device that accepts `token`, else raises (and audits the wrong code). Six digits are
    an authenticator code; anything else a recovery code, which is used up by this. Callers do
    not wrap this in a transaction: a wrong code's throttling would be rolled back with the error."""
    digits = _digits(token)
    used_recovery = False
    if totp is not None or _TOTP_SHAPE.match(digits):
        device = totp or confirmed_authenticator(user)
        error = TwoFactorCodeInvalid() if device is None or not _TOTP_SHAPE.match(digits) else None
        error = error or _try_device(TOTPDevice, device.pk, digits)
    else:
        device = StaticDevice.objects.filter(user=user, confirmed=True).first()
        recovery = _recovery_form(token)
        error = TwoFactorCodeInvalid() if device is None else _try_device(StaticDevice, device.pk, recovery)
        used_recovery = error is None
    if error is not None:
        if isinstance(error, TwoFactorCodeInvalid):
            _audit("two_factor.code_rejected", user=user, ip=ip)
        raise error
    if used_recovery:
        left = StaticToken.objects.filter(device=device).count()
        _audit("two_factor.recovery_code_used", user=user, ip=ip, details={"codes_left": left})
    return device


def confirm_authenticator(*, user: User, token: str, ip: str | None = None) -> RecoveryCodes:
    """Turns two-factor sign-in on with the authenticator being set up, once a code from it is
    right. Replaces an earlier authenticator, and returns new recovery codes (shown once)."""
    device = pending_authenticator(user)
    if device is None:
        raise NoAuthenticatorToConfirm()
    try:
        _check_code(user=user, token=token, ip=ip, totp=device)
    except TwoFactorCodeInvalid:
        raise TwoFactorCodeInvalid(SETUP_CODE_INVALID) from None  # no recovery codes exist yet
    with transaction.atomic():
        replaced = TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).delete()[0] > 0
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        codes = _new_recovery_codes(user)
        _audit("two_factor.enabled", user=user, ip=ip, details={"replaced_authenticator": replaced})
    return codes


def verify_second_factor(*, user: User, token: str, ip: str | None = None) -> Device:
    """The second step of signing in: the user's device that accepts `token` (an authenticator
    code or a recovery code), else `TwoFactorCodeInvalid` or `TwoFactorThrottled`."""
    if not has_two_factor(user):
        raise TwoFactorCodeInvalid()
    return _check_code(user=user, token=token, ip=ip)


def regenerate_recovery_codes(*, user: User, token: str, ip: str | None = None) -> RecoveryCodes:
    """New recovery codes after a current code; the old ones stop working."""
    verify_second_factor(user=user, token=token, ip=ip)
    with transaction.atomic():
        codes = _new_recovery_codes(user)
        _audit("two_factor.recovery_codes_regenerated", user=user, ip=ip)
    return codes


def disable_two_factor(*, user: User, token: str, ip: str | None = None) -> User:
    """Turns two-factor sign-in off after a current code; refused where it is required."""
    if two_factor_required(user):
        raise TwoFactorRequired()
    verify_second_factor(user=user, token=token, ip=ip)
    with transaction.atomic():
        _remove_devices(user)
        _audit("two_factor.disabled", user=user, ip=ip)
    return user


def _remove_devices(user: User) -> None:
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()


@transaction.atomic
def reset_two_factor(*, user: User, actor: User) -> User:
    """Staff remove a user's authenticator and recovery codes (a lost phone, identity proven
    another way); where two-factor sign-in is required, the user sets it up again next time."""
    _remove_devices(user)
    _audit("two_factor.reset", user=user, actor=actor)
    return user


@transaction.atomic
def set_partner_two_factor_requirement(*, partner: Partner, required: bool, actor: User) -> Partner:
    """Whether the partner's users must sign in with a second factor (staff decide)."""
    Partner.objects.filter(pk=partner.pk).update(require_two_factor=required)
    partner.require_two_factor = required
    record_event(
        action="partner.two_factor_required" if required else "partner.two_factor_not_required",
        actor=actor,
        partner=partner,
        target=partner,
    )
    return partner
