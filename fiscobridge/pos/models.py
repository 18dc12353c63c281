from django.conf import settings
from django.db import models
from django.db.models import Q

from fiscobridge.core import clock


class CertificateStatus(models.TextChoices):
    ACTIVE = "active"
    REVOKED = "revoked"


class CertificateDisplayStatus(models.TextChoices):
    """What lists show, in this order everywhere: the stored status, with `expired` derived from
    notAfter (never stored)."""

    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"  # still active (it holds its seat) but past notAfter: it may not sign
    REVOKED = "revoked", "Revoked"


class CertificateQuerySet(models.QuerySet):
    def for_account(self, account):
        return self.filter(account=account)

    def active(self):
        """Active status, expired or not: each one holds a seat."""
        return self.filter(status=CertificateStatus.ACTIVE)

    def with_display_status(self, status: str, at=None):
        moment = at or clock.now()
        filters = {
            CertificateDisplayStatus.ACTIVE: Q(status=CertificateStatus.ACTIVE, not_after__gt=moment),
            CertificateDisplayStatus.EXPIRED: Q(status=CertificateStatus.ACTIVE, not_after__lte=moment),
            CertificateDisplayStatus.REVOKED: Q(status=CertificateStatus.REVOKED),
        }
        return self.filter(filters[CertificateDisplayStatus(status)])  # an unknown status: ValueError

    def in_seat_order(self):
        """The order of SPEC 4.1: the first `capacity` active certificates may sign."""
        return self.order_by("uploaded_at", "id")


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
    # The PKCS#12 file as uploaded and its password, both Fernet tokens (core.encryption).
    file_encrypted = models.BinaryField()
    password_encrypted = models.BinaryField()
    file_name = models.CharField(max_length=255, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = CertificateQuerySet.as_manager()

    class Meta:
        # The seat order of an account's active certificates (SPEC 4.1), read by every entitlement
        # check (pos/hot_sql.py counts the ones ahead of a certificate).
        indexes = [
            models.Index(
                fields=["account", "uploaded_at", "id"],
                condition=Q(status="active"),
                name="certificate_seat_order",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "fingerprint"], condition=Q(status="active"), name="certificate_active_unique"
            ),
            models.CheckConstraint(
                name="certificate_revoked_has_time",
                condition=Q(status="active", revoked_at__isnull=True) | Q(status="revoked", revoked_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.uid} {self.taxpayer} ({self.display_status})"

    def is_expired_at(self, moment) -> bool:
        return moment >= self.not_after

    @property
    def is_expired(self) -> bool:
        return self.is_expired_at(clock.now())

    def display_status_at(self, moment) -> str:
        if self.status == CertificateStatus.REVOKED:
            return CertificateDisplayStatus.REVOKED
        return CertificateDisplayStatus.EXPIRED if self.is_expired_at(moment) else CertificateDisplayStatus.ACTIVE

    @property
    def display_status(self) -> str:
        return self.display_status_at(clock.now())
