"""Data lifecycle (issue 11.7): the one place that says how long each growing table keeps its rows.

`prune()` runs daily as a periodic job (fiscobridge/jobs.py) and by hand as `fiscobridge prune`.
Each step deletes in chunks so that a large first run never holds a long lock. Kept: audit events
(AUDIT_KEEP_DAYS, default forever), keys, subscriptions, certificates and connections.

| rows | kept for |
|---|---|
| expired sessions | until they expire (Django's own `clear_expired`) |
| key attempts (`RedeemAttempt`) | PRUNE_ATTEMPTS_DAYS (90), never less than the longest failure window |
| failure counters | while any failure is in its window or its lock runs |
| login attempt logs (django-axes) | PRUNE_LOGIN_LOGS_DAYS (90), never less than the login cool-off |
| sent e-mails (the outbox) | PRUNE_SENT_EMAILS_DAYS (90), never less than the longest reminder + 1 day (dedupe) |
| finished tasks | TASKS_KEEP_RESULTS_DAYS (failed ones three times as long) |
| password-reset counters, idempotency answers | a day / IDEMPOTENCY_KEEP_HOURS |
| webhook events, their deliveries | PRUNE_WEBHOOK_EVENTS_DAYS (30), ≥ longest reminder + 1 day; never if pending |
"""

from datetime import datetime, timedelta

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.db.models import Q

from fiscobridge.accounts.models import PasswordResetCounter
from fiscobridge.api.models import IdempotentRequest
from fiscobridge.audit.models import Event
from fiscobridge.core import clock
from fiscobridge.keys.models import FailureCounter, RedeemAttempt
from fiscobridge.notifications.models import EmailStatus, OutboundEmail
from fiscobridge.tasks.housekeeping import prune_task_results
from fiscobridge.webhooks.models import DeliveryStatus
from fiscobridge.webhooks.models import Event as WebhookEvent

CHUNK = 5000


def _delete_in_chunks(queryset) -> int:
    total = 0
    model = queryset.model
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:CHUNK])
        if not ids:
            return total
        deleted, _ = model.objects.filter(pk__in=ids).delete()
        total += deleted


def _longest_failure_window() -> timedelta:
    return timedelta(
        seconds=max(
            settings.REDEEM_SESSION_WINDOW_SECONDS,
            settings.REDEEM_ACCOUNT_WINDOW_SECONDS,
            settings.REDEEM_IP_WINDOW_SECONDS,
            settings.REDEEM_SESSION_LOCK_SECONDS,
        )
    )


def _idle_failure_counters(moment: datetime) -> int:
    """Counters with no failure in any window and no lock running: they hold nothing."""
    cutoff = moment - _longest_failure_window()
    idle = []
    candidates = FailureCounter.objects.filter(Q(locked_until__isnull=True) | Q(locked_until__lt=moment))
    for pk, recent in candidates.values_list("pk", "recent").iterator(chunk_size=CHUNK):
        if all(datetime.fromisoformat(at) < cutoff for at in recent or []):
            idle.append(pk)
    deleted = 0
    for start in range(0, len(idle), CHUNK):
        deleted += FailureCounter.objects.filter(pk__in=idle[start : start + CHUNK]).delete()[0]
    return deleted


def prune(*, at: datetime | None = None) -> dict[str, int]:
    """Delete what has outlived its retention; returns the rows deleted per kind."""
    moment = at or clock.now()
    days = timedelta(days=1)
    attempts_kept = max(settings.PRUNE_ATTEMPTS_DAYS * days, _longest_failure_window())
    logins_kept = max(settings.PRUNE_LOGIN_LOGS_DAYS * days, settings.AXES_COOLOFF_TIME)
    emails_kept = max(settings.PRUNE_SENT_EMAILS_DAYS, max(settings.NOTIFICATIONS_REMINDER_DAYS) + 1) * days
    # A `subscription.ending` event is its own dedupe: kept while its threshold could come round again.
    webhooks_kept = max(settings.PRUNE_WEBHOOK_EVENTS_DAYS, max(settings.NOTIFICATIONS_REMINDER_DAYS) + 1) * days
    report = {
        "sessions": _expired_sessions(),
        "key_attempts": _delete_in_chunks(RedeemAttempt.objects.filter(at__lt=moment - attempts_kept)),
        "failure_counters": _idle_failure_counters(moment),
        "login_attempts": sum(
            _delete_in_chunks(model.objects.filter(attempt_time__lt=moment - logins_kept))
            for model in (AccessAttempt, AccessFailureLog, AccessLog)
        ),
        "sent_emails": _delete_in_chunks(
            OutboundEmail.objects.filter(status=EmailStatus.SENT, sent_at__lt=moment - emails_kept)
        ),
        "password_reset_counters": _delete_in_chunks(
            PasswordResetCounter.objects.filter(hour__lt=int((moment - days).timestamp() // 3600))
        ),
        "webhook_events": _delete_in_chunks(
            WebhookEvent.objects.filter(created_at__lt=moment - webhooks_kept).exclude(
                deliveries__status=DeliveryStatus.PENDING
            )
        ),
        "idempotency_answers": _delete_in_chunks(
            IdempotentRequest.objects.filter(created_at__lt=moment - timedelta(hours=settings.IDEMPOTENCY_KEEP_HOURS))
        ),
        "audit_events": (
            _delete_in_chunks(Event.objects.filter(at__lt=moment - settings.AUDIT_KEEP_DAYS * days))
            if settings.AUDIT_KEEP_DAYS
            else 0
        ),
    }
    prune_task_results.call()
    return report


def _expired_sessions() -> int:
    from django.contrib.sessions.models import Session

    before = Session.objects.count()
    SessionStore.clear_expired()
    return before - Session.objects.count()
