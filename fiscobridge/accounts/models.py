from django.contrib.auth.models import (
    AbstractBaseUser,
    BaseUserManager,
    PermissionsMixin,
)
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from fiscobridge.accounts.scopes import Scope, parse_scopes
from fiscobridge.core import clock
from fiscobridge.core.localtime import DEFAULT_TIME_ZONE, TIME_ZONE_MAX_LENGTH, is_time_zone


def validate_time_zone(value: str) -> None:
    if not is_time_zone(value):
        raise ValidationError(f"{value!r} is not a known time zone (an IANA name such as Pacific/Fiji)")


def time_zone_field():
    """A tenant's IANA zone: what its pages, e-mails and exports show, and where its days and
    months begin (SPEC 8). A validator, not choices: the list comes from the installed tz
    database and would put ~600 names into every migration."""
    return models.CharField(
        "time zone",
        max_length=TIME_ZONE_MAX_LENGTH,
        default=DEFAULT_TIME_ZONE,
        validators=[validate_time_zone],
        help_text="Dates and times are shown in this zone; a redeem-by date ends at its midnight.",
    )


class Account(models.Model):
    """A customer: a business that redeems keys, buys seats and runs certificates."""

    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=clock.now)
    time_zone = time_zone_field()

    def __str__(self) -> str:
        return self.name


class Partner(models.Model):
    """A reseller that issues prepaid activation keys."""

    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=clock.now)
    # Its users mint value (keys), so a code from an authenticator is asked after the password.
    # On for every new partner; partners that existed before it were given the same (migration
    # 0002, docs/two-factor.md).
    require_two_factor = models.BooleanField(
        "two-factor sign-in required",
        default=True,
        help_text="Users must sign in with a code from an authenticator app as well as the password.",
    )
    time_zone = time_zone_field()

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **fields):
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """Logs in with e-mail. Belongs to one customer account, or one partner, or is staff."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200, blank=True)
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.PROTECT, related_name="users")
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="users")
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=clock.now)

    objects = UserManager()
    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="user_one_tenant",
                condition=~(Q(account__isnull=False) & Q(partner__isnull=False)),
            )
        ]

    def __str__(self) -> str:
        return self.email


class ApiToken(models.Model):
    """A bearer token: `fbt_<prefix>_<secret>`. Only the prefix (lookup) and an HMAC are stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=clock.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Space-separated `Scope` values (accounts/scopes.py). Tokens made before scopes existed were
    # given `all` by the migration, so they kept every right they had.
    scopes = models.CharField(max_length=255, default=Scope.ALL)

    class Meta:
        constraints = [models.CheckConstraint(name="api_token_has_scopes", condition=~Q(scopes=""))]

    def __str__(self) -> str:
        return f"fbt_{self.prefix}_…"

    @property
    def scope_set(self) -> frozenset[str]:
        return parse_scopes(self.scopes)

    @property
    def has_full_access(self) -> bool:
        return Scope.ALL in self.scope_set

    @property
    def scope_list(self) -> list[str]:
        """The scopes in the order of `Scope` (for pages), e.g. `["read", "keys:redeem"]`."""
        held = self.scope_set
        return [scope.value for scope in Scope if scope in held]

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class PasswordResetCounter(models.Model):
    """Password-reset requests of one scope (a client IP, or a keyed hash of an e-mail) in one
    hour: the throttle of accounts/password_reset.py. Rows older than a day are deleted there."""

    scope = models.CharField(max_length=10)  # "ip" or "email"
    key = models.CharField(max_length=64)  # the IP, or the e-mail's HMAC (no address stored)
    hour = models.PositiveIntegerField()  # hours since the epoch (UTC)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key", "hour"], name="password_reset_counter_scope")]
        indexes = [models.Index(fields=["hour"], name="password_reset_counter_hour")]

    def __str__(self) -> str:
        return f"{self.scope} {self.count} in hour {self.hour}"
