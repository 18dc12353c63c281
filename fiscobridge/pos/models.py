from django.db import models
from django.db.models import Q

from fiscobridge.core import clock


class CertificateStatus(models.TextChoices):
    ACTIVE = "active"
    REVOKED = "revoked"


class Certificate(models.Model):
    """A fiscal certificate (PKCS#12) of a Cloud POS: each active one uses a seat."""

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="certificates")
    uid = models.CharField(max_length=32, unique=True)
    taxpayer = models.CharField(max_length=300, blank=True)
    location = models.CharField(max_length=300, blank=True)
    pac = models.CharField(max_length=200, blank=True)
    serial = models.CharField(max_length=100)
    fingerprint = models.CharField(max_length=64)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    status = models.CharField(max_length=10, choices=CertificateStatus.choices, default=CertificateStatus.ACTIVE)
    uploaded_at = models.DateTimeField(default=clock.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "fingerprint"], condition=Q(status="active"), name="certificate_active_unique"
            )
        ]
