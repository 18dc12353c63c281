from django.db import models
from django.db.models import Q

from fiscobridge.core import clock
from fiscobridge.subscriptions.models import BillingInterval, Product


class StripeCustomer(models.Model):
    """The Stripe customer of an account: created at its first checkout, never shared.

    Every Stripe object we accept (session, subscription, invoice) is mapped to an account through
    its customer id here, never through metadata that the payload carries.
    """

    account = models.OneToOneField("accounts.Account", on_delete=models.PROTECT, related_name="stripe_customer")
    customer_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(default=clock.now)

    def __str__(self) -> str:
        return self.customer_id


class CheckoutSession(models.Model):
    """A Stripe Checkout the account started: what was chosen, and whether Stripe completed it."""

    session_id = models.CharField(max_length=255, unique=True)
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="checkout_sessions")
    started_by = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    product = models.CharField(max_length=3, choices=Product.choices)
    tier = models.CharField(max_length=10, blank=True, default="")
    seats = models.PositiveIntegerField()
    interval = models.CharField(max_length=5, choices=BillingInterval.choices)
    price_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=clock.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    stripe_subscription_id = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["account", "-created_at"])]
        constraints = [
            models.CheckConstraint(name="checkout_seats_range", condition=Q(seats__gte=1) & Q(seats__lte=1000)),
        ]

    def __str__(self) -> str:
        return self.session_id


class EventStatus(models.TextChoices):
    RECEIVED = "received"  # stored, being handled (or the handler crashed before recording)
    HANDLED = "handled"
    IGNORED = "ignored"  # a type we do not act on
    FAILED = "failed"  # Stripe retries it; the next delivery handles it again


class StripeEvent(models.Model):
    """Every signed webhook event, stored once by its id with the outcome of handling it."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=EventStatus.choices, default=EventStatus.RECEIVED)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # A few facts, not the whole payload (which may hold names, e-mails and addresses).
    payload = models.JSONField(default=dict, blank=True)
    created_in_stripe_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(default=clock.now)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "-received_at"])]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type} ({self.status})"
