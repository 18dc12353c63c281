from django.conf import settings
from django.db import models

from fiscobridge.core import clock


class IssueFormNonce(models.Model):
    """A one-time token of an issue-keys form as shown to one user.

    Claimed by a DELETE that only one request can win (a row lock on PostgreSQL, the write lock
    on SQLite), so a double click, a reload or two tabs never issue a second batch whose codes
    nobody would see.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=clock.now)

    def __str__(self) -> str:
        return f"Issue form token of user {self.user_id}"


class IssueJob(models.Model):
    """A Partner Portal batch too large to issue in its request (more than KEY_ISSUE_DIRECT_MAX
    keys): the task queue issues it (partners/tasks.py) while the page shows its progress, and its
    codes wait here, encrypted, for their one download; the download deletes them.

    The plain codes exist only in the worker's memory and in the download's answer (SPEC 2.3).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        ISSUING = "issuing", "Issuing"
        READY = "ready", "Ready to download"
        DOWNLOADED = "downloaded", "Downloaded"
        FAILED = "failed", "Failed"

    partner = models.ForeignKey("accounts.Partner", on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    product = models.CharField(max_length=3)
    tier = models.CharField(max_length=10, blank=True, default="")
    seats = models.PositiveIntegerField()
    months = models.PositiveIntegerField()
    quantity = models.PositiveIntegerField()
    reference = models.CharField(max_length=200, blank=True, default="")
    redeem_by = models.DateField(null=True, blank=True)  # as typed: the partner's local day
    ip = models.GenericIPAddressField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0)  # keys issued so far (PostgreSQL reports as it goes)
    error = models.CharField(max_length=300, blank=True, default="")
    batch = models.ForeignKey("keys.KeyBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The CSV of the codes, Fernet-encrypted (core/encryption, purpose "issued-codes"); emptied by
    # the download.
    codes_encrypted = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    downloaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Codes are held only while they wait for the download.
            models.CheckConstraint(
                condition=models.Q(codes_encrypted__isnull=True) | models.Q(status="ready"),
                name="issue_job_codes_only_when_ready",
            ),
        ]

    def __str__(self) -> str:
        return f"Issue job {self.pk} ({self.quantity} keys, {self.status})"

    @property
    def percent(self) -> int:
        if self.status in (self.Status.READY, self.Status.DOWNLOADED):
            return 100
        return min(99, self.done * 100 // self.quantity) if self.quantity else 0
