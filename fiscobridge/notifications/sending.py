"""Sending the outbox. Sending never raises: a failure is logged (never the body) and the row
stays pending for the next run.
"""

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db.models import F, Q

from fiscobridge.core import clock
from fiscobridge.notifications.models import EmailStatus, OutboundEmail

logger = logging.getLogger("fiscobridge.notifications")

# How long one sender owns a row it is sending; far above EMAIL_TIMEOUT. A sender that dies
# mid-send loses the row after this, and the next run sends it again (at least once).
CLAIM_SECONDS = 600


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0  # attempts that failed in this run (the row stays pending, or gives up)
    skipped: int = 0  # claimed by another sender meanwhile, or no longer pending
    errors: list[str] = field(default_factory=list)


def _claim(pk: int) -> OutboundEmail | None:
    """Take a pending row for this sender; None when another sender has it or it is done."""
    moment = clock.now()
    won = (
        OutboundEmail.objects.filter(pk=pk, status=EmailStatus.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=moment))
        .update(
            claimed_until=moment + timedelta(seconds=CLAIM_SECONDS), attempts=F("attempts") + 1, last_attempt_at=moment
        )
    )
    return OutboundEmail.objects.get(pk=pk) if won else None


def describe_error(error: Exception) -> str:
    # The class and the transport's message (an SMTP reply, a socket error): never the body.
    return f"{type(error).__name__}: {error}"[:300]


def send_outbound(*, dedupe_keys: list[str] | None = None, ids: list[int] | None = None) -> SendReport:
    """Send pending e-mails (all of them, or those named). Never raises."""
    report = SendReport()
    try:
        pending = OutboundEmail.objects.filter(status=EmailStatus.PENDING)
        if dedupe_keys is not None:
            pending = pending.filter(dedupe_key__in=dedupe_keys)
        if ids is not None:
            pending = pending.filter(pk__in=ids)
        todo = list(pending.order_by("created_at", "id").values_list("pk", flat=True))
        if not todo:
            return report
        connection = get_connection()
    except Exception as error:
        logger.error(
            "outbound e-mail: cannot start sending (%s); pending e-mail waits for the next run", describe_error(error)
        )
        report.errors.append(describe_error(error))
        return report
    with contextlib.suppress(Exception):
        connection.open()  # one SMTP session for the run; a failure here shows on each send below
    try:
        for pk in todo:
            _send_one(pk, connection, report)
    finally:
        with contextlib.suppress(Exception):
            connection.close()
    return report


def _send_one(pk: int, connection, report: SendReport) -> None:
    try:
        row = _claim(pk)
    except Exception as error:
        logger.error("outbound e-mail %s: cannot claim it (%s)", pk, describe_error(error))
        report.errors.append(describe_error(error))
        return
    if row is None:
        report.skipped += 1
        return
    try:
        EmailMessage(
            subject=row.subject,
            body=row.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=row.recipients,
            connection=connection,
        ).send()
    except Exception as error:
        gave_up = row.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS
        OutboundEmail.objects.filter(pk=pk).update(
            status=EmailStatus.FAILED if gave_up else EmailStatus.PENDING,
            claimed_until=None,
            last_error=describe_error(error),
        )
        logger.warning(
            "outbound e-mail %s (%s) not sent, attempt %s of %s%s: %s",
            pk,
            row.kind,
            row.attempts,
            settings.NOTIFICATIONS_MAX_ATTEMPTS,
            "; giving up" if gave_up else "; retried by the next run",
            describe_error(error),
        )
        report.failed += 1
        report.errors.append(describe_error(error))
        return
    OutboundEmail.objects.filter(pk=pk).update(
        status=EmailStatus.SENT, sent_at=clock.now(), claimed_until=None, last_error=""
    )
    report.sent += 1


def requeue(*, emails) -> int:
    """Staff: give up-on (`failed`) e-mails another round of attempts. Returns how many."""
    return OutboundEmail.objects.filter(pk__in=[e.pk for e in emails], status=EmailStatus.FAILED).update(
        status=EmailStatus.PENDING, attempts=0, claimed_until=None
    )


def transport_description() -> str:
    """One line for operators: where e-mail goes with the current settings."""
    backend = settings.EMAIL_BACKEND
    if backend.endswith("smtp.EmailBackend"):
        security = "TLS" if settings.EMAIL_USE_TLS else "SSL" if settings.EMAIL_USE_SSL else "no TLS"
        return f"SMTP {settings.EMAIL_HOST}:{settings.EMAIL_PORT} ({security})"
    if backend.endswith("filebased.EmailBackend"):
        return f"files in {settings.EMAIL_FILE_PATH} (EMAIL_HOST is not set: e-mail is kept, not delivered)"
    if backend.endswith("console.EmailBackend"):
        return "console (EMAIL_HOST is not set: e-mail is printed, not delivered)"
    return backend
