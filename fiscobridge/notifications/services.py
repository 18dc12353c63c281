"""E-mail about licensing facts, through an outbox (docs/notifications.md).

The change that an e-mail reports (an activation, a voided key) writes its OutboundEmail rows
in its own transaction, so the rows exist if and only if the change committed; an on-commit
hook then tries to send them. Reminders are queued by `fiscobridge send-reminders`, which also
retries whatever is still pending. Sending never raises: a failure is logged (never the body)
and the row stays pending for the next run.

Every e-mail names a key by its hint (`POS-••••-••••-ABCD`), never by its code: the code is not
stored anywhere, so it cannot leak from here either.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string

from fiscobridge.core import clock
from fiscobridge.notifications.models import EmailKind, EmailStatus, OutboundEmail
from fiscobridge.subscriptions.models import Source, Subscription

logger = logging.getLogger("fiscobridge.notifications")

# How long one sender owns a row it is sending; far above EMAIL_TIMEOUT. A sender that dies
# mid-send loses the row after this, and the next run sends it again (at least once).
CLAIM_SECONDS = 600


@dataclass(frozen=True)
class Draft:
    kind: str
    dedupe_key: str
    recipients: list[str]
    subject: str
    body: str
    account: object = None
    partner: object = None
    subscription: object = None


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0  # attempts that failed in this run (the row stays pending, or gives up)
    skipped: int = 0  # claimed by another sender meanwhile, or no longer pending
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReminderReport:
    queued: int
    sending: SendReport
    pending: int  # still waiting after this run (failed now, or claimed by another sender)
    given_up: int  # rows in status `failed`, in total


# --- recipients and rendering ----------------------------------------------------------------

def _emails(users) -> list[str]:
    return list(users.filter(is_active=True).order_by("email").values_list("email", flat=True))


def _partner_recipients(partner) -> list[str]:
    return _emails(partner.users.all()) if partner is not None else []


def _account_recipients(account) -> list[str]:
    return _emails(account.users.all())


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _product(subscription: Subscription) -> str:
    tier = f" {subscription.get_tier_display()}" if subscription.tier else ""
    return f"{subscription.get_product_display()}{tier}"


def _seats(subscription: Subscription) -> str:
    return f"{subscription.seats} seat{'s' if subscription.seats != 1 else ''}"


def _package(subscription: Subscription) -> str:
    return f"{_product(subscription)}, {_seats(subscription)}"


def _context(subscription: Subscription, key, **extra) -> dict:
    return {
        "subscription": subscription, "key": key, "hint": key.hint if key else subscription.key_hint,
        "package": _package(subscription), "product": _product(subscription), "account": subscription.account,
        "partner": key.partner if key else None, "starts": _when(subscription.started_at),
        "expires": _when(subscription.expires_at), "portal_url": settings.PUBLIC_BASE_URL, **extra,
    }


def _body(template: str, context: dict) -> str:
    return render_to_string(f"notifications/{template}.txt", context).strip() + "\n"


# --- queueing --------------------------------------------------------------------------------

def _queue(drafts: list[Draft], *, send_after_commit: bool = True) -> list[str]:
    """Write the drafts that have recipients; an existing dedupe key is left as it is."""
    rows = [
        OutboundEmail(
            kind=d.kind, dedupe_key=d.dedupe_key, recipients=d.recipients, subject=d.subject[:300], body=d.body,
            account=d.account, partner=d.partner, subscription=d.subscription,
        )
        for d in drafts if d.recipients
    ]
    # ON CONFLICT DO NOTHING (INSERT OR IGNORE on SQLite): of two runs queueing the same fact,
    # one row survives, and neither fails.
    OutboundEmail.objects.bulk_create(rows, ignore_conflicts=True)
    keys = [row.dedupe_key for row in rows]
    if keys and send_after_commit:
        transaction.on_commit(lambda: send_outbound(dedupe_keys=keys), robust=True)
    return keys


def _queue_safely(what: str, build) -> None:
    """Queue inside the caller's transaction without ever failing it: a broken e-mail must not
    cost a customer their activation. The savepoint drops a half-written outbox on error."""
    try:
        with transaction.atomic():
            _queue(build())
    except Exception:
        logger.exception("e-mails for %s were not queued", what)


def queue_activation_emails(*, key, subscription: Subscription) -> None:
    """Call inside the redemption transaction: a receipt to the activating user and a notice to
    the issuing partner's users, sent once the activation commits."""

    def build() -> list[Draft]:
        account = subscription.account
        user = key.activated_by
        receipt_to = [user.email] if user is not None and user.is_active else _account_recipients(account)
        renewal = subscription.renews
        context = _context(subscription, key, activated_at=_when(key.activated_at), renewal=renewal,
                           renewal_expires=_when(renewal.expires_at) if renewal else "")
        return [
            Draft(
                kind=EmailKind.ACTIVATION_RECEIPT, dedupe_key=f"key:{key.pk}:activated:customer",
                recipients=receipt_to, account=account, partner=key.partner, subscription=subscription,
                subject=f"Activation receipt: {_package(subscription)} until {subscription.expires_at:%Y-%m-%d}",
                body=_body("activation_receipt", context),
            ),
            Draft(
                kind=EmailKind.KEY_ACTIVATED, dedupe_key=f"key:{key.pk}:activated:partner",
                recipients=_partner_recipients(key.partner), account=account, partner=key.partner,
                subscription=subscription, subject=f"Key {key.hint} was activated by {account.name}",
                body=_body("key_activated", context),
            ),
        ]

    _queue_safely(f"the activation of key {key.pk}", build)


def queue_key_voided_emails(*, key) -> None:
    """Call in the transaction that voids the key: the customer and the partner are told."""

    def build() -> list[Draft]:
        subscription = key.subscription
        context = _context(subscription, key, voided_at=_when(key.voided_at), reason=key.voided_reason)
        account = key.activated_account
        return [
            Draft(
                kind=EmailKind.KEY_VOIDED, dedupe_key=f"key:{key.pk}:voided:customer",
                recipients=_account_recipients(account), account=account, partner=key.partner,
                subscription=subscription, subject=f"Your {_product(subscription)} subscription ({_seats(subscription)}) has ended",
                body=_body("key_voided", context),
            ),
            Draft(
                kind=EmailKind.KEY_VOIDED_PARTNER, dedupe_key=f"key:{key.pk}:voided:partner",
                recipients=_partner_recipients(key.partner), account=account, partner=key.partner,
                subscription=subscription, subject=f"Key {key.hint} was voided by FiscoBridge",
                body=_body("key_voided_partner", context),
            ),
        ]

    _queue_safely(f"voiding key {key.pk}", build)


# --- reminders -------------------------------------------------------------------------------

def _reminder_days() -> list[int]:
    return sorted({int(d) for d in settings.NOTIFICATIONS_REMINDER_DAYS if int(d) > 0})


def due_threshold(subscription: Subscription, moment: datetime, days: list[int]) -> int | None:
    """The reminder (in days before the end) that is due now, if any.

    The tightest threshold already reached, and only if it was reached while the subscription
    ran: a one-month key is not told "30 days left" on the day it is activated, and a run that
    was missed for a week sends the 7-day reminder, not the 30-day one as well.
    """
    reached = [d for d in days if subscription.expires_at - timedelta(days=d) <= moment]
    if not reached:
        return None
    tightest = min(reached)
    return tightest if subscription.expires_at - timedelta(days=tightest) >= subscription.started_at else None


def reminder_candidates(moment: datetime, horizon_days: int):
    """Key-based subscriptions ending within the horizon that will really end.

    Not ended early (voided), and not continued by a renewal that itself still stands: a
    renewed subscription's seats carry on, so there is nothing to remind about. Stripe
    subscriptions renew by themselves (Stripe e-mails its own renewal notices), so they get none.
    """
    return (
        Subscription.objects.filter(
            source=Source.KEY, expires_at__gt=moment, expires_at__lte=moment + timedelta(days=horizon_days),
            ended_at__isnull=True,
        )
        .filter(Q(renewed_by__isnull=True) | Q(renewed_by__ended_at__isnull=False))
        .select_related("account", "activation_key__partner")
        .order_by("expires_at", "id")
    )


def _reminder_drafts(subscription: Subscription, days: int, wanted: set[str]) -> list[Draft]:
    key = subscription.activation_key
    partner = key.partner if key else None
    context = _context(subscription, key, days=days, days_label=f"{days} day{'s' if days != 1 else ''}")
    drafts = []
    customer_key = f"subscription:{subscription.pk}:ends-in-{days}d:customer"
    if customer_key in wanted:
        drafts.append(Draft(
            kind=EmailKind.SUBSCRIPTION_REMINDER, dedupe_key=customer_key,
            recipients=_account_recipients(subscription.account), account=subscription.account, partner=partner,
            subscription=subscription, body=_body("subscription_reminder", context),
            subject=f"Your {_product(subscription)} subscription ({_seats(subscription)}) ends in {context['days_label']}",
        ))
    partner_key = f"subscription:{subscription.pk}:ends-in-{days}d:partner"
    if partner_key in wanted and partner is not None:
        drafts.append(Draft(
            kind=EmailKind.RENEWAL_LEAD, dedupe_key=partner_key, recipients=_partner_recipients(partner),
            account=subscription.account, partner=partner, subscription=subscription,
            body=_body("renewal_lead", context),
            subject=f"Renewal lead: {subscription.account.name}'s key {key.hint} ends in {context['days_label']}",
        ))
    return drafts


def queue_due_reminders(*, at: datetime | None = None) -> int:
    """Queue every reminder due now that was never queued before; returns how many this run wrote.

    Each (subscription, threshold, recipient side) has one dedupe key, so a second run, or two
    runs at once, queue nothing twice (of two overlapping runs both may count a row that only
    one of them wrote: the count is a report, the unique key is the guarantee).
    """
    moment = at or clock.now()
    days = _reminder_days()
    if not days:
        return 0
    due = []
    for subscription in reminder_candidates(moment, max(days)).iterator(chunk_size=500):
        threshold = due_threshold(subscription, moment, days)
        if threshold is not None:
            due.append((subscription, threshold))
    queued = 0
    for start in range(0, len(due), 500):
        chunk = due[start:start + 500]
        wanted = {f"subscription:{s.pk}:ends-in-{d}d:{side}" for s, d in chunk for side in ("customer", "partner")}
        wanted -= set(OutboundEmail.objects.filter(dedupe_key__in=wanted).values_list("dedupe_key", flat=True))
        drafts = [draft for s, d in chunk for draft in _reminder_drafts(s, d, wanted)]
        queued += len(_queue(drafts, send_after_commit=False))
    return queued


def send_reminders(*, at: datetime | None = None) -> ReminderReport:
    """What `fiscobridge send-reminders` does: queue due reminders, then send everything pending."""
    queued = queue_due_reminders(at=at)
    sending = send_outbound()
    return ReminderReport(
        queued=queued, sending=sending,
        pending=OutboundEmail.objects.filter(status=EmailStatus.PENDING).count(),
        given_up=OutboundEmail.objects.filter(status=EmailStatus.FAILED).count(),
    )


# --- sending ---------------------------------------------------------------------------------

def _claim(pk: int) -> OutboundEmail | None:
    """Take a pending row for this sender; None when another sender has it or it is done."""
    moment = clock.now()
    won = (
        OutboundEmail.objects.filter(pk=pk, status=EmailStatus.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=moment))
        .update(claimed_until=moment + timedelta(seconds=CLAIM_SECONDS), attempts=F("attempts") + 1,
                last_attempt_at=moment)
    )
    return OutboundEmail.objects.get(pk=pk) if won else None


def _describe(error: Exception) -> str:
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
        logger.error("outbound e-mail: cannot start sending (%s); pending e-mail waits for the next run",
                     _describe(error))
        report.errors.append(_describe(error))
        return report
    try:
        connection.open()  # one SMTP session for the run; a failure here shows on each send below
    except Exception:
        pass
    try:
        for pk in todo:
            _send_one(pk, connection, report)
    finally:
        try:
            connection.close()
        except Exception:
            pass
    return report


def _send_one(pk: int, connection, report: SendReport) -> None:
    try:
        row = _claim(pk)
    except Exception as error:
        logger.error("outbound e-mail %s: cannot claim it (%s)", pk, _describe(error))
        report.errors.append(_describe(error))
        return
    if row is None:
        report.skipped += 1
        return
    try:
        EmailMessage(
            subject=row.subject, body=row.body, from_email=settings.DEFAULT_FROM_EMAIL, to=row.recipients,
            connection=connection,
        ).send()
    except Exception as error:
        gave_up = row.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS
        OutboundEmail.objects.filter(pk=pk).update(
            status=EmailStatus.FAILED if gave_up else EmailStatus.PENDING, claimed_until=None,
            last_error=_describe(error),
        )
        logger.warning(
            "outbound e-mail %s (%s) not sent, attempt %s of %s%s: %s", pk, row.kind, row.attempts,
            settings.NOTIFICATIONS_MAX_ATTEMPTS, "; giving up" if gave_up else "; retried by the next run",
            _describe(error),
        )
        report.failed += 1
        report.errors.append(_describe(error))
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
    if backend.endswith("console.EmailBackend"):
        return "console (EMAIL_HOST is not set: e-mail is printed, not delivered)"
    return backend
