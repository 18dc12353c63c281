from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q

from fiscobridge.core import clock
from fiscobridge.keys.codes import hint_for
from fiscobridge.subscriptions.models import Product, Tier


class KeyStatus(models.TextChoices):
    """Stored states. `expired` (available past redeem-by) and `voided` are derived for display."""

    AVAILABLE = "available"
    ACTIVATED = "activated"
    REVOKED = "revoked"


class KeyDisplayStatus(models.TextChoices):
    """What people and the API see, in this order everywhere: the stored state, refined by facts."""

    AVAILABLE = "available", "Available"
    ACTIVATED = "activated", "Activated"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"  # available, but past its redeem-by: no one can redeem it
    VOIDED = "voided", "Voided"  # activated, then its subscription ended by staff


# The rule of display status, in its two forms: a filter per status (lists, counts, the partner
# dashboard) and the status of one loaded key (`ActivationKey.display_status_at`). They are kept
# side by side on purpose; tests/test_key_status.py proves that every key matches exactly the
# filter of its own status.
def display_status_filters(moment: datetime) -> dict[str, Q]:
    not_past_redeem_by = Q(redeem_by__isnull=True) | Q(redeem_by__gt=moment)
    return {
        KeyDisplayStatus.AVAILABLE: Q(status=KeyStatus.AVAILABLE) & not_past_redeem_by,
        KeyDisplayStatus.ACTIVATED: Q(status=KeyStatus.ACTIVATED, voided_at__isnull=True),
        KeyDisplayStatus.REVOKED: Q(status=KeyStatus.REVOKED),
        KeyDisplayStatus.EXPIRED: Q(status=KeyStatus.AVAILABLE, redeem_by__lte=moment),
        KeyDisplayStatus.VOIDED: Q(status=KeyStatus.ACTIVATED, voided_at__isnull=False),
    }


class KeyBatch(models.Model):
    """One issuing action of a partner: every key in it carries the same package."""

    partner = models.ForeignKey("accounts.Partner", on_delete=models.PROTECT, related_name="batches")
    product = models.CharField(max_length=3, choices=Product.choices)
    tier = models.CharField(max_length=10, choices=Tier.choices, blank=True, default="")
    seats = models.PositiveIntegerField()
    months = models.PositiveIntegerField()
    quantity = models.PositiveIntegerField()
    reference = models.CharField(max_length=200, blank=True)
    redeem_by = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"Batch {self.pk} · {self.quantity} × {self.product.upper()}"


class ActivationKeyQuerySet(models.QuerySet):
    def for_partner(self, partner):
        return self.filter(partner=partner)

    def redeemable(self, at: datetime | None = None):
        """Available and not past redeem-by: the only keys any customer may redeem."""
        return self.with_display_status(KeyDisplayStatus.AVAILABLE, at)

    def with_display_status(self, status: str, at: datetime | None = None):
        """Keys whose display status is `status`; an unknown status is a programming error."""
        return self.filter(display_status_filters(at or clock.now())[KeyDisplayStatus(status)])


class ActivationKey(models.Model):
    """A prepaid key. The code itself is never stored: only its HMAC and the last group."""

    partner = models.ForeignKey("accounts.Partner", on_delete=models.PROTECT, related_name="keys")
    batch = models.ForeignKey(KeyBatch, on_delete=models.PROTECT, related_name="keys")
    product = models.CharField(max_length=3, choices=Product.choices)
    tier = models.CharField(max_length=10, choices=Tier.choices, blank=True, default="")
    seats = models.PositiveIntegerField()
    months = models.PositiveIntegerField()
    reference = models.CharField(max_length=200, blank=True)
    code_hmac = models.CharField(max_length=64, unique=True)
    last_group = models.CharField(max_length=4, db_index=True)
    status = models.CharField(max_length=10, choices=KeyStatus.choices, default=KeyStatus.AVAILABLE)
    # Copied from the batch so that redemption is one conditional UPDATE of one table.
    redeem_by = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="activated_keys"
    )
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=500, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_reason = models.CharField(max_length=500, blank=True)

    objects = ActivationKeyQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["partner", "-id"]),
            models.Index(fields=["partner", "status", "-id"]),
            models.Index(fields=["batch", "-id"]),
            # The partner dashboard's activations-per-day chart: a range of one partner's
            # activation times (only activated keys have one).
            models.Index(
                fields=["partner", "activated_at"],
                name="key_partner_activated_at",
                condition=Q(activated_at__isnull=False),
            ),
        ]
        # Also, on PostgreSQL only: a trigram index on UPPER(reference) (migration 0002), so a
        # search by hint or reference is a bitmap OR of two indexes, not a walk of every key.
        constraints = [
            models.CheckConstraint(name="key_seats_range", condition=Q(seats__gte=1) & Q(seats__lte=1000)),
            models.CheckConstraint(name="key_months_range", condition=Q(months__gte=1) & Q(months__lte=60)),
            models.CheckConstraint(
                name="key_tier_matches_product",
                condition=(Q(product="pos", tier="") | Q(product="int", tier__in=["starter", "growth", "scale"])),
            ),
            models.CheckConstraint(
                name="key_activation_facts",
                condition=~Q(status="activated") | (Q(activated_account__isnull=False) & Q(activated_at__isnull=False)),
            ),
            models.CheckConstraint(
                name="key_revocation_facts", condition=~Q(status="revoked") | Q(revoked_at__isnull=False)
            ),
            models.CheckConstraint(
                name="key_void_only_activated", condition=Q(voided_at__isnull=True) | Q(status="activated")
            ),
        ]

    def __str__(self) -> str:
        return self.hint

    @property
    def hint(self) -> str:
        return hint_for(self.product, self.last_group)

    def display_status_at(self, moment: datetime) -> str:
        """The rule of `display_status_filters`, for one loaded key."""
        if self.status == KeyStatus.AVAILABLE and self.redeem_by is not None and self.redeem_by <= moment:
            return KeyDisplayStatus.EXPIRED
        if self.status == KeyStatus.ACTIVATED and self.voided_at is not None:
            return KeyDisplayStatus.VOIDED
        return KeyDisplayStatus(self.status)

    @property
    def display_status(self) -> str:
        return self.display_status_at(clock.now())


# The partner dashboard's rollup (keys/rollup.py): counts kept in the transactions that change
# the keys, so that the dashboard reads a few rows per partner instead of every key. They are
# derived data: `rollup.rebuild()` recomputes them from the keys at any time.
class KeyBatchCounts(models.Model):
    """How many keys of one batch are in each stored state.

    `available_keys` counts keys whose stored state is available: the dashboard shows them as
    expired when the batch is past its redeem-by (every key carries its batch's redeem-by).
    """

    batch = models.OneToOneField(KeyBatch, on_delete=models.CASCADE, primary_key=True, related_name="counts")
    available_keys = models.IntegerField(default=0)
    activated_keys = models.IntegerField(default=0)  # activated and not voided
    revoked_keys = models.IntegerField(default=0)
    voided_keys = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"Batch {self.batch_id}: {self.available_keys} available, {self.activated_keys} activated"


class ActivationHour(models.Model):
    """How many of a partner's keys were activated in one UTC hour (voided ones included).

    Hours, not days, so that a chart can group them into the days of any whole-hour time zone.
    """

    # No index of its own: the unique (partner, hour) index serves every lookup by partner.
    partner = models.ForeignKey("accounts.Partner", on_delete=models.CASCADE, related_name="+", db_index=False)
    hour = models.DateTimeField()  # the hour's start, UTC
    activations = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["partner", "hour"], name="activation_hour_partner_hour")]

    def __str__(self) -> str:
        return f"{self.activations} activation(s) at {self.hour:%Y-%m-%d %H}:00 UTC"


class PendingActivation(models.Model):
    """One activation not yet added to `KeyBatchCounts` and `ActivationHour` (keys/rollup.py).

    An activation inserts this row instead of updating the two shared rows: an insert takes no
    lock another activation waits for, while the shared rows made a partner's activations commit
    one at a time. The worker folds these rows into the counts every minute; until then the
    dashboard adds them when it reads, so its figures stay exact.
    """

    # No index of their own: the (partner, hour) index serves the dashboard and the rebuild; a
    # batch's rows are only looked up by the fold, which reads them all. No constraint in the
    # database either: PostgreSQL checks a foreign key by share-locking the referenced row, and
    # every activation of a partner references the same partner and batch rows, so concurrent
    # activations would share those locks (a MultiXact each time). The rows are written by one
    # statement from a key that was just claimed; Django still deletes them with their batch.
    partner = models.ForeignKey(
        "accounts.Partner", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    batch = models.ForeignKey(KeyBatch, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    hour = models.DateTimeField()  # the start of the activation's UTC hour

    class Meta:
        indexes = [models.Index(fields=["partner", "hour"], name="pending_activation_partner")]

    def __str__(self) -> str:
        return f"Activation in batch {self.batch_id} at {self.hour:%Y-%m-%d %H}:00 UTC, not yet counted"


class RedeemAttempt(models.Model):
    """One validate or activate, for the audit (the limits count on FailureCounter). Holds no key."""

    at = models.DateTimeField(default=clock.now)
    action = models.CharField(max_length=10)  # validate | activate
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    session_scope = models.CharField(max_length=64)  # a hash of the session or "token:<id>"
    ip = models.GenericIPAddressField()
    input_hash = models.CharField(max_length=64)  # keyed hash of the raw input, never the input
    outcome = models.CharField(max_length=32)  # "ok" or the error code
    failed = models.BooleanField()  # answered `not_available`, the one outcome the limits count

    def __str__(self) -> str:
        return f"{self.action} {self.outcome} at {self.at:%Y-%m-%d %H:%M:%S}"


class LockScope(models.TextChoices):
    """The three layers of SPEC 2.6, in the order their counters are locked (see keys/limits.py)."""

    SESSION = "session", "Session or API token"
    ACCOUNT = "account", "Customer account"
    IP = "ip", "IP address"


class FailureCounter(models.Model):
    """The recent failed attempts of one scope (a session, an account, an IP), and its lock.

    One row per scope. A failure takes the rows of its three scopes under lock (INSERT … ON
    CONFLICT … RETURNING) and counts itself only if no scope is full, so that however many
    requests and servers race, the N-th failure is the last one answered `not_available`
    (keys/limits.py). `recent` holds the times of the newest failures still in the window (at
    most the limit), so the window slides exactly as SPEC 2.6 says.
    """

    scope = models.CharField(max_length=10, choices=LockScope.choices)
    scope_key = models.CharField(max_length=80)
    recent = models.JSONField(default=list)  # ISO times of the newest failures in the window, oldest first
    failures = models.PositiveIntegerField(default=0)  # len(recent), for people reading the admin
    locked_until = models.DateTimeField(null=True, blank=True)
    # Attempts answered `too_many_attempts` while locked: counted here, not stored one row each.
    refused = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "scope_key"], name="failure_counter_scope")]
        indexes = [models.Index(fields=["locked_until"], name="failure_counter_locked")]

    def __str__(self) -> str:
        return f"{self.scope} {self.failures} recent failures"
