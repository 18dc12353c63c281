"""Creating tenants, users and API tokens."""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from fiscobridge.accounts import hot_sql
from fiscobridge.accounts.errors import EmailTaken
from fiscobridge.accounts.models import Account, ApiToken, Partner, User
from fiscobridge.accounts.scopes import Scope, format_scopes, scopes_for_kind, user_kind
from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.core.crypto import constant_time_equal, keyed_hash
from fiscobridge.core.errors import InvalidInput, PermissionDenied
from fiscobridge.core.localtime import DEFAULT_TIME_ZONE, is_time_zone
from fiscobridge.core.text import clean_text

TOKEN_PREFIX = "fbt_"


def _checked_user_fields(*, name: str, email: str, password: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput.for_field("name", "A name of 1 to 200 characters is required")
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInput.for_field("email", "Enter a valid e-mail address") from None
    try:
        validate_password(password, User(email=email))
    except ValidationError as error:
        raise InvalidInput.for_field("password", " ".join(error.messages)) from None
    return email


def _create_user(*, email: str, password: str, **tenant) -> User:
    try:
        with transaction.atomic():
            return User.objects.create_user(email, password, **tenant)
    except IntegrityError:
        raise EmailTaken() from None


def checked_time_zone(time_zone: str) -> str:
    """An IANA zone name of the installed tz database, or InvalidInput on the `time_zone` field."""
    time_zone = (time_zone or "").strip() if isinstance(time_zone, str) else ""
    if not is_time_zone(time_zone):
        raise InvalidInput.for_field(
            "time_zone", "Choose a time zone from the list (an IANA name such as Pacific/Fiji)"
        )
    return time_zone


def _create_tenant(model, *, name: str, email: str, password: str, time_zone: str) -> User:
    """A tenant (customer account or partner) with its first user, audited as `<kind>.created`."""
    email = _checked_user_fields(name=name, email=email, password=password)
    time_zone = checked_time_zone(time_zone)
    tenant = model.objects.create(name=name.strip(), time_zone=time_zone)
    kind = model._meta.model_name  # "account" or "partner": also the user's field for it
    user = _create_user(email=email, password=password, **{kind: tenant})
    record_event(action=f"{kind}.created", actor=user, target=tenant, **{kind: tenant})
    return user


@transaction.atomic
def create_account(*, name: str, email: str, password: str, time_zone: str = DEFAULT_TIME_ZONE) -> User:
    """A customer account with its first user; returns the user."""
    return _create_tenant(Account, name=name, email=email, password=password, time_zone=time_zone)


@transaction.atomic
def create_partner(*, name: str, email: str, password: str, time_zone: str = DEFAULT_TIME_ZONE) -> User:
    """A partner (reseller) with its first user; returns the user."""
    return _create_tenant(Partner, name=name, email=email, password=password, time_zone=time_zone)


@transaction.atomic
def set_time_zone(*, tenant: Account | Partner, time_zone: str, actor: User) -> Account | Partner:
    """Change the zone a tenant's pages, e-mails and exports are shown in (and where its days and
    months begin); audited as `<kind>.time_zone_changed` with the old and new zone. Setting the
    zone it already has changes nothing and records nothing."""
    time_zone = checked_time_zone(time_zone)
    kind = tenant._meta.model_name  # "account" or "partner"
    if getattr(actor, kind + "_id", None) != tenant.pk and not actor.is_staff:
        # Views only ever pass the requester's own tenant; this guards any other caller.
        raise PermissionDenied()
    previous = type(tenant).objects.select_for_update().values_list("time_zone", flat=True).get(pk=tenant.pk)
    tenant.time_zone = time_zone
    if previous == time_zone:
        return tenant
    type(tenant).objects.filter(pk=tenant.pk).update(time_zone=time_zone)
    record_event(
        action=f"{kind}.time_zone_changed",
        actor=actor,
        target=tenant,
        details={"from": previous, "to": time_zone},
        **{kind: tenant},
    )
    return tenant


@transaction.atomic
def create_staff_user(*, email: str, password: str) -> User:
    email = _checked_user_fields(name="staff", email=email, password=password)
    user = _create_user(email=email, password=password, is_staff=True, is_superuser=True)
    record_event(action="staff.created", actor=user, target=user)
    return user


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    plain: str  # shown once, never stored


def _token_digest(prefix: str, secret: str) -> str:
    return keyed_hash("api-token", f"{prefix}.{secret}")


def checked_scopes(*, user: User, scopes: Iterable[str]) -> str:
    """The stored text of a token's scopes, or InvalidInput on the `scopes` field: at least one,
    each known and meaningful for the user's kind, and `all` alone (with others it would hide
    that the person meant to limit the token)."""
    chosen = {str(s).strip() for s in scopes} - {""}
    allowed = {s.value for s in scopes_for_kind(user_kind(user))}
    if not chosen:
        raise InvalidInput.for_field("scopes", "Choose at least one scope")
    unknown = sorted(chosen - allowed)
    if unknown:
        raise InvalidInput.for_field(
            "scopes", f"Not a scope for this user: {', '.join(unknown)} (choose from {', '.join(sorted(allowed))})"
        )
    if Scope.ALL in chosen and len(chosen) > 1:
        raise InvalidInput.for_field(
            "scopes", "Full access already includes every scope: choose it alone, or untick it to limit the token"
        )
    return format_scopes(chosen)


def create_api_token(*, user: User, name: str = "", scopes: Iterable[str] = (Scope.ALL,)) -> IssuedToken:
    """A new token of `user` with these scopes (default: full access); the plain token is returned
    once and never stored."""
    name = clean_text(name, field="name", max_length=100)
    stored_scopes = checked_scopes(user=user, scopes=scopes)
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=prefix, digest=_token_digest(prefix, secret), scopes=stored_scopes
    )
    record_event(
        action="api_token.created",
        actor=user,
        account=user.account,
        partner=user.partner,
        target=token,
        details={"scopes": stored_scopes.split()},
    )
    return IssuedToken(token=token, plain=f"{TOKEN_PREFIX}{prefix}_{secret}")


def revoke_api_token(*, token: ApiToken, actor: User) -> ApiToken:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=clock.now())
    token.refresh_from_db()
    record_event(action="api_token.revoked", actor=actor, account=actor.account, partner=actor.partner, target=token)
    return token


LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate_api_token(plain: str) -> ApiToken | None:
    """The active token for a bearer string, or None. Touches last_used_at at most once a minute."""
    if not plain.startswith(TOKEN_PREFIX):
        return None
    prefix, _, secret = plain[len(TOKEN_PREFIX) :].partition("_")
    if not prefix or not secret or len(prefix) > 16:
        return None
    token = hot_sql.unrevoked_token(prefix)
    if token is None or not constant_time_equal(token.digest, _token_digest(prefix, secret)):
        return None
    moment = clock.now()
    if token.last_used_at is None or moment - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=moment)
        token.last_used_at = moment
    return token
