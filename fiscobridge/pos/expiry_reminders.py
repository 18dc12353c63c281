"""Certificate expiry reminders: an active certificate whose own validity (`not_after`) ends within
30 days gets an e-mail to the account at 30, 7 and 1 local days before (the same thresholds as
the subscription reminders, up to 30), each once.

The certificate's end is its certificate authority's, not ours: nothing we sell renews it, so the
e-mail says how to replace it. Queued by the hourly `certificate-expiry-reminders` job
(pos/tasks.py) and by `fiscobridge send-reminders`, sent by the worker.
"""

from datetime import datetime, timedelta

from django.conf import settings

from fiscobridge.core import clock
from fiscobridge.core.localtime import days_left
from fiscobridge.notifications.compose import Draft, account_recipients, local_text, render_body
from fiscobridge.notifications.letters import store_drafts
from fiscobridge.notifications.models import EmailKind, OutboundEmail
from fiscobridge.pos.models import Certificate, CertificateStatus

HORIZON_DAYS = 30  # issue 12: "when a certificate's own expiry is within 30 days"


def _threshold_days() -> list[int]:
    return sorted({int(d) for d in settings.NOTIFICATIONS_REMINDER_DAYS if 0 < int(d) <= HORIZON_DAYS})


def due_certificate_threshold(certificate: Certificate, moment: datetime, days: list[int]) -> int | None:
    """The tightest threshold reached now, in the account's local days; only if it was reached
    after the upload (a certificate uploaded with 5 days left is told "7 days", not also "30")."""
    zone = certificate.account.time_zone
    reached = [d for d in days if days_left(certificate.not_after, moment, zone) <= d]
    if not reached:
        return None
    tightest = min(reached)
    return tightest if days_left(certificate.not_after, certificate.uploaded_at, zone) >= tightest else None


def _draft(certificate: Certificate, days: int) -> Draft:
    account = certificate.account
    days_label = f"{days} day{'s' if days != 1 else ''}"
    context = {
        "certificate": certificate,
        "account": account,
        "days_label": days_label,
        "expires": local_text(certificate.not_after, account.time_zone),
        "portal_url": settings.PUBLIC_BASE_URL,
    }
    return Draft(
        kind=EmailKind.CERTIFICATE_EXPIRY,
        dedupe_key=f"certificate:{certificate.pk}:expires-in-{days}d",
        recipients=account_recipients(account),
        account=account,
        subject=f"Your fiscal certificate {certificate.uid} expires in {days_label}",
        body=render_body("certificate_expiry", context),
    )


def queue_due_certificate_reminders(*, at: datetime | None = None) -> int:
    """Queue every certificate reminder due now that was never queued; returns how many."""
    moment = at or clock.now()
    days = _threshold_days()
    if not days:
        return 0
    candidates = (
        Certificate.objects.filter(
            status=CertificateStatus.ACTIVE,
            not_after__gt=moment,
            not_after__lte=moment + timedelta(days=max(days) + 1),  # a day more: local days
        )
        .select_related("account")
        .order_by("not_after", "id")
    )
    due = {}
    for certificate in candidates.iterator(chunk_size=500):
        threshold = due_certificate_threshold(certificate, moment, days)
        if threshold is not None:
            due[f"certificate:{certificate.pk}:expires-in-{threshold}d"] = (certificate, threshold)
    due_keys = set(due) - set(
        OutboundEmail.objects.filter(dedupe_key__in=list(due)).values_list("dedupe_key", flat=True)
    )
    return len(store_drafts([_draft(*due[key]) for key in sorted(due_keys)]))
