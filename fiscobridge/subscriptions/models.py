from datetime import datetime

from django.db import models
from django.db.models import F, Q

from fiscobridge.core import clock


class Product(models.TextChoices):
    POS = "pos", "Cloud POS"
    INT = "int", "Integrations"


class Tier(models.TextChoices):
    STARTER = "starter", "Starter"
    GROWTH = "growth", "Growth"
    SCALE = "scale", "Scale"


class Source(models.TextChoices):
    KEY = "key", "Activation key"
    STRIPE = "stripe", "Stripe"


class BillingInterval(models.TextChoices):
    MONTH = "month", "Monthly"
    YEAR = "year", "Yearly"


class Status(models.TextChoices):
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class SubscriptionQuerySet(models.QuerySet):
    def for_account(self, account):
        return self.filter(account=account)

    def active(self, at: datetime | None = None):
        moment = at or clock.now()
        return self.filter(started_at__lte=moment, expires_at__gt=moment).filter(
            Q(ended_at__isnull=True) | Q(ended_at__gt=moment)
        )

    def current(self, at: datetime | None = None):
        """Active or scheduled: not yet expired and not ended."""
        moment = at or clock.now()
        return self.filter(expires_at__gt=moment).filter(Q(ended_at__isnull=True) | Q(ended_at__gt=moment))


class Subscription(models.Model):
    """Seats of one product (and tier) for a period. Status is derived from these facts."""

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="subscriptions")
    product = models.CharField(max_length=3, choices=Product.choices)
    tier = models.CharField(max_length=10, choices=Tier.choices, blank=True, default="")
    seats = models.PositiveIntegerField()
    source = models.CharField(max_length=10, choices=Source.choices)
    activation_key = models.OneToOneField(
        "keys.ActivationKey", null=True, blank=True, on_delete=models.PROTECT, related_name="subscription"
    )
    key_hint = models.CharField(max_length=24, blank=True)
    # The key-based subscription this one continues (a renewal starts when that one ends).
    renews = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="renewed_by")
    started_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # Set when the subscription stops before expires_at (a voided key, a cancelled Stripe plan).
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=clock.now)

    # Stripe-sourced rows (written only by fiscobridge.billing): one row per subscription item,
    # so an Integrations subscription with two tiers is two rows. The dates and ended_at above
    # are a projection of what Stripe last said (docs/billing.md); status stays derived.
    stripe_subscription_id = models.CharField(max_length=255, blank=True, default="")
    stripe_item_id = models.CharField(max_length=255, blank=True, default="")
    stripe_price_id = models.CharField(max_length=255, blank=True, default="")
    stripe_status = models.CharField(max_length=32, blank=True, default="")  # Stripe's word: active, past_due…
    billing_interval = models.CharField(max_length=5, choices=BillingInterval.choices, blank=True, default="")
    cancel_at_period_end = models.BooleanField(default=False)
    # When we first saw the subscription past_due: its seats last the grace period from here.
    past_due_since = models.DateTimeField(null=True, blank=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["account", "product", "expires_at"])]
        constraints = [
            models.CheckConstraint(name="subscription_seats_range", condition=Q(seats__gte=1) & Q(seats__lte=100_000)),
            models.CheckConstraint(name="subscription_period_order", condition=Q(expires_at__gt=F("started_at"))),
            models.CheckConstraint(
                name="subscription_tier_matches_product",
                condition=(Q(product="pos", tier="") | Q(product="int", tier__in=["starter", "growth", "scale"])),
            ),
            models.CheckConstraint(
                name="subscription_key_source_has_key",
                condition=~Q(source="key") | Q(activation_key__isnull=False),
            ),
            models.CheckConstraint(
                name="subscription_stripe_source_has_ids",
                condition=~Q(source="stripe") | (~Q(stripe_subscription_id="") & ~Q(stripe_item_id="")),
            ),
            models.UniqueConstraint(
                name="subscription_stripe_item_unique",
                fields=["stripe_subscription_id", "stripe_item_id"],
                condition=Q(source="stripe"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_product_display()} ×{self.seats} ({self.status})"

    def status_at(self, moment: datetime) -> str:
        if self.ended_at is not None and self.ended_at <= moment:
            return Status.CANCELLED
        if moment < self.started_at:
            return Status.SCHEDULED
        if moment >= self.expires_at:
            return Status.EXPIRED
        return Status.ACTIVE

    @property
    def status(self) -> str:
        return self.status_at(clock.now())
