from django.db import models
from django.db.models import Q

from fiscobridge.core import clock


class EmailKind(models.TextChoices):
    KEY_ACTIVATED = "key_activated", "Key activated (to the partner)"
    ACTIVATION_RECEIPT = "activation_receipt", "Activation receipt (to the customer)"
    SUBSCRIPTION_REMINDER = "subscription_reminder", "Subscription ends soon (to the customer)"
    RENEWAL_LEAD = "renewal_lead", "Renewal lead (to the partner)"
    KEY_VOIDED = "key_voided", "Key voided (to the customer)"
    KEY_VOIDED_PARTNER = "key_voided_partner", "Key voided (to the partner)"
    WEBHOOK_FAILING = "webhook_failing", "Webhook endpoint failing (to the partner)"
    CERTIFICATE_EXPIRY = "certificate_expiry", "Certificate expires soon (to the customer)"


class EmailStatus(models.TextChoices):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after NOTIFICATIONS_MAX_ATTEMPTS; staff may queue it again


class OutboundEmail(models.Model):
    """One e-mail to send: written in the transaction of the change it reports, sent after commit.

    `dedupe_key` is unique, so an e-mail about one fact (a key's activation, a subscription's
    7-day reminder) exists at most once, however many runs or processes try to queue it.
    """

    kind = models.CharField(max_length=32, choices=EmailKind.choices)
    dedupe_key = models.CharField(max_length=200, unique=True)
    recipients = models.JSONField(default=list)
    subject = models.CharField(max_length=300)
    body = models.TextField()  # never holds a key code: only its hint
    status = models.CharField(max_length=10, choices=EmailStatus.choices, default=EmailStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    # A sender owns the row until then (two overlapping runs never send the same row twice).
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # What the e-mail is about, for staff (filters, links); none of these is needed to send it.
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    partner = models.ForeignKey("accounts.Partner", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    subscription = models.ForeignKey(
        "subscriptions.Subscription", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_at"], condition=Q(status="pending"), name="outbound_email_pending"),
        ]
        constraints = [
            models.CheckConstraint(name="outbound_email_status_values", condition=Q(status__in=EmailStatus.values)),
            models.CheckConstraint(
                name="outbound_email_sent_has_time", condition=~Q(status="sent") | Q(sent_at__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"
