from django.db import models

from fiscobridge.core import clock


class IdempotentRequest(models.Model):
    """The first answer to a write sent with an `Idempotency-Key` (SPEC 8), kept for 24 hours.

    One row per (requester scope, key). While the first request runs, `status` is empty: a retry
    then is told the key is in use. The key is stored as a keyed hash, the body as a digest.
    """

    scope = models.CharField(max_length=40)  # "token:<id>" or "user:<id>" (a browser session)
    key_hash = models.CharField(max_length=64)
    route = models.CharField(max_length=200)  # method and path of the first request
    body_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=clock.now)
    status = models.PositiveSmallIntegerField(null=True)
    body = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key_hash"], name="idempotent_request_key")]
        indexes = [models.Index(fields=["created_at"], name="idempotent_request_created")]

    def __str__(self) -> str:
        return f"{self.route} → {self.status or 'in progress'}"
