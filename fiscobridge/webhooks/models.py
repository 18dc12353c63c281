"""Webhooks for partners (SPEC 9.2, docs/webhooks.md): endpoints, events and their deliveries."""

from django.db import models

from fiscobridge.core import clock


class EventType(models.TextChoices):
    KEY_ACTIVATED = "key.activated", "A key was activated"
    KEY_REVOKED = "key.revoked", "A key was revoked"
    KEY_VOIDED = "key.voided", "A key was voided by FiscoBridge"
    SUBSCRIPTION_ENDING = "subscription.ending", "A subscription from your key ends in 30, 7 or 1 days"
    BATCH_ISSUED = "batch.issued", "A batch of keys was issued"


class EndpointStatus(models.TextChoices):
    OK = "ok", "OK"
    FAILING = "failing", "Failing"  # a delivery exhausted its retries; the next success clears it


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its (next) attempt
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"  # every retry failed; Resend tries again


class EndpointQuerySet(models.QuerySet):
    def for_partner(self, partner):
        return self.filter(partner=partner)

    def listening(self, event_type: str):
        """Enabled endpoints subscribed to `event_type` (see `Endpoint.events`)."""
        return self.filter(enabled=True, events__contains=f",{event_type},")


class Endpoint(models.Model):
    partner = models.ForeignKey("accounts.Partner", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    # The subscribed event types as ",a,b," (with the outer commas): one LIKE finds the listeners,
    # also inside the activation's single round trip (webhooks/events.py), on both databases.
    events = models.CharField(max_length=200)
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    # `whsec_…` encrypted (core/encryption.py): it signs every delivery, so it cannot be a hash.
    secret_encrypted = models.BinaryField()
    status = models.CharField(max_length=10, choices=EndpointStatus.choices, default=EndpointStatus.OK)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)

    objects = EndpointQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["partner", "enabled"], name="webhooks_endpoint_partner")]

    def __str__(self) -> str:
        return self.url

    @property
    def event_types(self) -> list[str]:
        return [e for e in self.events.split(",") if e]


class Event(models.Model):
    """One fact told to a partner's endpoints. Its id is the `webhook-id`: the same on every retry
    and resend, so a receiver can drop duplicates."""

    id = models.CharField(primary_key=True, max_length=40)  # "evt_" + 26 random base32 characters
    partner = models.ForeignKey("accounts.Partner", on_delete=models.CASCADE, related_name="+")
    type = models.CharField(max_length=40, choices=EventType.choices)
    created_at = models.DateTimeField(default=clock.now)
    # The body exactly as sent, {"id", "type", "created_at", "data"}: kept as text so that every
    # retry and resend sends (and signs) the same bytes (PostgreSQL's jsonb would reorder keys).
    body = models.TextField()
    # For an event told at most once per fact (a reminder threshold): NULL for the others.
    dedupe_key = models.CharField(max_length=100, null=True, blank=True, unique=True)

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class Delivery(models.Model):
    """One event to one endpoint: exactly one row per pair, whatever the retries and workers."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)  # every POST made, resends included
    failures = models.PositiveIntegerField(default=0)  # failed attempts since the last (re)send: the schedule's step
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A worker that claimed the next attempt holds it until then (it may have died mid-request).
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)  # the first 1 KiB, for the partner to debug with
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhooks_one_delivery_per_endpoint")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhooks_delivery_due"),
            models.Index(fields=["endpoint", "-created_at"], name="webhooks_delivery_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id}"
