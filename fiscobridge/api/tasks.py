"""The API's periodic upkeep."""

from datetime import timedelta

from django.conf import settings
from django_tasks import task

from fiscobridge.api.models import IdempotentRequest
from fiscobridge.core import clock


@task()
def prune_idempotent_requests() -> int:
    """Periodic: forget kept answers older than IDEMPOTENCY_KEEP_HOURS (a retry then runs anew)."""
    cutoff = clock.now() - timedelta(hours=settings.IDEMPOTENCY_KEEP_HOURS)
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
