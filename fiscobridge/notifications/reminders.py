"""Renewal reminders: which subscriptions are due a reminder, and queueing each one once.

Queued by `fiscobridge send-reminders`, which also retries whatever is still pending.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from fiscobridge.core import clock
from fiscobridge.core.localtime import days_left
from fiscobridge.notifications.compose import (
    Draft,
    account_recipients,
    account_zone,
    email_context,
    partner_recipients,
    partner_zone,
    product_name,
    render_body,
    seats_phrase,
)
from fiscobridge.notifications.letters import store_drafts
from fiscobridge.notifications.models import EmailKind, EmailStatus, OutboundEmail
from fiscobridge.notifications.sending import SendReport, send_outbound
from fiscobridge.subscriptions.models import Source, Subscription


@dataclass(frozen=True)
class ReminderReport:
    queued: int
    sending: SendReport
    pending: int  # still waiting after this run (failed now, or claimed by another sender)
    given_up: int  # rows in status `failed`, in total


def reminder_days() -> list[int]:
    return sorted({int(d) for d in settings.NOTIFICATIONS_REMINDER_DAYS if int(d) > 0})


def due_threshold(subscription: Subscription, moment: datetime, days: list[int]) -> int | None:
    """The reminder (in days before the end) that is due now, if any.

    The tightest threshold already reached, and only if it was reached while the subscription
    ran: a one-month key is not told "30 days left" on the day it is activated, and a run that
    was missed for a week sends the 7-day reminder, not the 30-day one as well.

    Days are the account's local calendar days (SPEC 8): "7 days" is due from the start of the
    local day seven days before the local day the subscription ends, so a Samoan shop is not
    told "7 days" on what is already the sixth day before its end in Apia.
    """
    time_zone = subscription.account.time_zone
    left = days_left(subscription.expires_at, moment, time_zone)
    reached = [d for d in days if left <= d]
    if not reached:
        return None
    tightest = min(reached)
    ran = days_left(subscription.expires_at, subscription.started_at, time_zone)
    return tightest if ran >= tightest else None


def reminder_candidates(moment: datetime, horizon_days: int):
    """Key-based subscriptions ending within the horizon that will really end.

    Not ended early (voided), and not continued by a renewal that itself still stands: a
    renewed subscription's seats carry on, so there is nothing to remind about. Stripe
    subscriptions renew by themselves (Stripe e-mails its own renewal notices), so they get none.
    """
    return (
        Subscription.objects.filter(
            source=Source.KEY,
            expires_at__gt=moment,
            # One day more: a threshold counted in local days is reached up to a day earlier.
            expires_at__lte=moment + timedelta(days=horizon_days + 1),
            ended_at__isnull=True,
        )
        .filter(Q(renewed_by__isnull=True) | Q(renewed_by__ended_at__isnull=False))
        .select_related("account", "activation_key__partner")
        .order_by("expires_at", "id")
    )


def _reminder_drafts(subscription: Subscription, days: int, wanted: set[str]) -> list[Draft]:
    key = subscription.activation_key
    partner = key.partner if key else None
    days_label = f"{days} day{'s' if days != 1 else ''}"

    def context_in(time_zone):
        return email_context(subscription, key, time_zone=time_zone, days=days, days_label=days_label)

    drafts = []
    customer_key = f"subscription:{subscription.pk}:ends-in-{days}d:customer"
    if customer_key in wanted:
        drafts.append(
            Draft(
                kind=EmailKind.SUBSCRIPTION_REMINDER,
                dedupe_key=customer_key,
                recipients=account_recipients(subscription.account),
                account=subscription.account,
                partner=partner,
                subscription=subscription,
                body=render_body("subscription_reminder", context_in(account_zone(subscription.account))),
                subject=(
                    f"Your {product_name(subscription)} subscription ({seats_phrase(subscription)})"
                    f" ends in {days_label}"
                ),
            )
        )
    partner_key = f"subscription:{subscription.pk}:ends-in-{days}d:partner"
    if partner_key in wanted and partner is not None:
        drafts.append(
            Draft(
                kind=EmailKind.RENEWAL_LEAD,
                dedupe_key=partner_key,
                recipients=partner_recipients(partner),
                account=subscription.account,
                partner=partner,
                subscription=subscription,
                body=render_body("renewal_lead", context_in(partner_zone(partner))),
                subject=f"Renewal lead: {subscription.account.name}'s key {key.hint} ends in {days_label}",
            )
        )
    return drafts


def queue_due_reminders(*, at: datetime | None = None) -> int:
    """Queue every reminder due now that was never queued before; returns how many this run wrote.

    Each (subscription, threshold, recipient side) has one dedupe key, so a second run, or two
    runs at once, queue nothing twice (of two overlapping runs both may count a row that only
    one of them wrote: the count is a report, the unique key is the guarantee).
    """
    moment = at or clock.now()
    days = reminder_days()
    if not days:
        return 0
    due = []
    for subscription in reminder_candidates(moment, max(days)).iterator(chunk_size=500):
        threshold = due_threshold(subscription, moment, days)
        if threshold is not None:
            due.append((subscription, threshold))
    queued = 0
    for start in range(0, len(due), 500):
        chunk = due[start : start + 500]
        wanted = {f"subscription:{s.pk}:ends-in-{d}d:{side}" for s, d in chunk for side in ("customer", "partner")}
        wanted -= set(OutboundEmail.objects.filter(dedupe_key__in=wanted).values_list("dedupe_key", flat=True))
        drafts = [draft for s, d in chunk for draft in _reminder_drafts(s, d, wanted)]
        queued += len(store_drafts(drafts))
    return queued


def send_reminders(*, at: datetime | None = None) -> ReminderReport:
    """What `fiscobridge send-reminders` does: queue due reminders, then send everything pending."""
    queued = queue_due_reminders(at=at)
    sending = send_outbound()
    return ReminderReport(
        queued=queued,
        sending=sending,
        pending=OutboundEmail.objects.filter(status=EmailStatus.PENDING).count(),
        given_up=OutboundEmail.objects.filter(status=EmailStatus.FAILED).count(),
    )
