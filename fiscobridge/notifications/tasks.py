"""E-mail work for the task queue: composing and sending happen here, never in a request.

A failed send leaves its outbox row pending and the task is retried with backoff
(fiscobridge.tasks.queue.retrying); the periodic sweep (fiscobridge/jobs.py) sends whatever is
still pending, e.g. after a worker was killed mid-task. The outbox rows' dedupe keys make every
retry safe: an e-mail is written once and sent once (at least once if a worker dies mid-send).
"""

from django_tasks import task

from fiscobridge.notifications.letters import activation_drafts, store_drafts
from fiscobridge.notifications.reminders import send_reminders
from fiscobridge.notifications.sending import SendReport, send_outbound
from fiscobridge.subscriptions.models import Subscription
from fiscobridge.tasks.queue import retrying


class EmailNotSent(Exception):
    """Some e-mail of this task is still pending: retry the task later."""


# Seconds before each retry: about 10 s, 1 min, 5 min, 30 min, 2 h (the outbox row gives up after
# NOTIFICATIONS_MAX_ATTEMPTS sends; the periodic sweep also retries pending rows).
EMAIL_BACKOFF = (10, 60, 300, 1800, 7200)


def _sent_or_retry(report: SendReport) -> dict:
    if report.failed or report.errors:
        raise EmailNotSent(f"{report.failed} e-mail(s) not sent: {'; '.join(report.errors[:3])}")
    return {"sent": report.sent, "skipped": report.skipped}


@task(takes_context=True)
@retrying(backoff=EMAIL_BACKOFF)
def send_emails(context, dedupe_keys: list[str]) -> dict:
    """Send the named outbox rows that are still pending."""
    return _sent_or_retry(send_outbound(dedupe_keys=dedupe_keys))


@task(takes_context=True)
@retrying(backoff=EMAIL_BACKOFF)
def send_activation_emails(context, subscription_id: int) -> dict:
    """Compose, store (once) and send the receipt and the partner's notice of one activation."""
    subscription = Subscription.objects.select_related(
        "account", "renews", "activation_key__partner", "activation_key__activated_by"
    ).get(pk=subscription_id)
    keys = store_drafts(activation_drafts(subscription=subscription))
    return _sent_or_retry(send_outbound(dedupe_keys=keys))


@task()
def send_pending_emails() -> dict:
    """Periodic: send every pending e-mail (a lost task, a mail server that was down)."""
    report = send_outbound()
    return {"sent": report.sent, "failed": report.failed, "skipped": report.skipped}


@task()
def queue_and_send_reminders() -> dict:
    """Periodic: the 30/7/1-day reminders that are due, then everything pending."""
    report = send_reminders()
    return {"queued": report.queued, "sent": report.sending.sent, "pending": report.pending}
