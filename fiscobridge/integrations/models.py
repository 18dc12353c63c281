from django.conf import settings
from django.db import models
from django.db.models import Q

from fiscobridge.core import clock


class ConnectionType(models.TextChoices):
    XERO = "xero", "Xero"
    ZOHO_BOOKS = "zoho_books", "Zoho Books"
    CUSTOM = "custom", "Custom system"


class ConnectionTier(models.TextChoices):
    """The paid Integrations tiers (as on subscriptions) plus the free trial."""

    STARTER = "starter", "Starter"
    GROWTH = "growth", "Growth"
    SCALE = "scale", "Scale"
    TRIAL = "trial", "Trial"


class ConnectionStatus(models.TextChoices):
    ACTIVE = "active"
    REMOVED = "removed"


class Connection(models.Model):
    """A running Integrations sync: each active one uses a seat of its tier (or the trial)."""

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="connections")
    uid = models.CharField(max_length=32, unique=True)
    type = models.CharField(max_length=20, choices=ConnectionType.choices)
    tier = models.CharField(max_length=10, choices=ConnectionTier.choices)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=ConnectionStatus.choices, default=ConnectionStatus.ACTIVE)
    created_at = models.DateTimeField(default=clock.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "status", "tier"], name="connection_account_seats_idx")]
        constraints = [
            models.CheckConstraint(name="connection_type_values", condition=Q(type__in=ConnectionType.values)),
            models.CheckConstraint(name="connection_tier_values", condition=Q(tier__in=ConnectionTier.values)),
            # Removal is a fact with a time: a removed connection has removed_at, an active one none.
            models.CheckConstraint(
                name="connection_status_removed_at",
                condition=Q(status=ConnectionStatus.ACTIVE, removed_at__isnull=True)
                | Q(status=ConnectionStatus.REMOVED, removed_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.uid} {self.name}"


class InvoiceUsage(models.Model):
    """Invoices an account synced on one tier (or the trial) in one of its LOCAL calendar months
    (`month` is its first day). The count belongs to the account and tier, not to a connection
    (SPEC 4.2): removing and re-creating a connection does not start it again."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="invoice_usage")
    tier = models.CharField(max_length=10, choices=ConnectionTier.choices)
    month = models.DateField()
    invoices = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "tier", "month"], name="invoice_usage_one_row_per_month"),
            models.CheckConstraint(name="invoice_usage_invoices_non_negative", condition=Q(invoices__gte=0)),
            models.CheckConstraint(name="invoice_usage_tier_values", condition=Q(tier__in=ConnectionTier.values)),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.tier} {self.month:%Y-%m}: {self.invoices}"
