"""The partner's e-mail when an endpoint starts failing, through the notifications outbox (stored,
sent by the worker, retried; docs/notifications.md)."""

from django.conf import settings
from django.urls import reverse

from fiscobridge.notifications.compose import Draft, local_text, partner_recipients
from fiscobridge.notifications.models import EmailKind
from fiscobridge.notifications.outbox import queue_drafts


def queue_endpoint_failing_email(*, endpoint) -> None:
    """Call in the transaction that marks the endpoint failing (once per time it starts failing)."""
    partner = endpoint.partner
    since = local_text(endpoint.failing_since, partner.time_zone)
    page = settings.PUBLIC_BASE_URL.rstrip("/") + reverse("partners:webhooks")
    body = (
        f"Hello {partner.name},\n\n"
        f"Your webhook endpoint\n\n    {endpoint.url}\n\n"
        f"did not accept an event after every retry (about 27 hours of attempts), so it is now marked\n"
        f"failing since {since}. We keep sending new events to it; the next one it accepts clears\n"
        f"the mark. Each delivery, its response code and its error are on the Webhooks page, where\n"
        f"Resend sends an event again:\n\n    {page}\n\n"
        "— FiscoBridge\n"
    )
    queue_drafts(
        [
            Draft(
                kind=EmailKind.WEBHOOK_FAILING,
                dedupe_key=f"webhook-endpoint:{endpoint.pk}:failing:{int(endpoint.failing_since.timestamp())}",
                recipients=partner_recipients(partner),
                partner=partner,
                subject=f"Webhook endpoint failing: {endpoint.url[:80]}",
                body=body,
            )
        ]
    )
