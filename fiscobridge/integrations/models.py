from django.db import models

from fiscobridge.core import clock


class ConnectionStatus(models.TextChoices):
    ACTIVE = "active"
    REMOVED = "removed"


class Connection(models.Model):
    """A running Integrations sync: each active one uses a seat of its tier (or the trial)."""

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="connections")
    uid = models.CharField(max_length=32, unique=True)
    type = models.CharField(max_length=20)  # xero | zoho_books | custom
    tier = models.CharField(max_length=10)  # starter | growth | scale | trial
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=ConnectionStatus.choices, default=ConnectionStatus.ACTIVE)
    created_at = models.DateTimeField(default=clock.now)
    removed_at = models.DateTimeField(null=True, blank=True)
