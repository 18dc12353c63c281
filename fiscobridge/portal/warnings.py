"""Warnings before things stop (issue 12): what the Client Portal's banners say about an account.

A subscription that will really end within the warning horizon (not continued by a renewal; a
Stripe plan only when it is set to cancel at the period's end), and an active certificate whose
own expiry (`not_after`) is that close. Days are the account's local calendar days, as in the
reminder e-mails (notifications/reminders.py), so a banner and an e-mail never disagree.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from fiscobridge.core import clock
from fiscobridge.core.localtime import days_left
from fiscobridge.pos.models import Certificate, CertificateStatus
from fiscobridge.subscriptions.models import Source, Subscription

# From this many local days before the end, a warning is urgent (shown as an error, not a notice).
URGENT_DAYS = 7


@dataclass(frozen=True)
class Ending:
    """One thing of the account that stops soon: a subscription or a certificate."""

    kind: str  # "subscription" or "certificate"
    title: str  # what it is, in the product's words
    ends_at: datetime
    days: int  # local calendar days left (0: it ends today)
    product: str = "pos"  # what stops with it: certificates (pos) or connections (int)

    @property
    def urgent(self) -> bool:
        return self.days <= URGENT_DAYS

    @property
    def days_phrase(self) -> str:
        if self.days <= 0:
            return "today"
        if self.days == 1:
            return "tomorrow"
        return f"in {self.days} days"


def warning_days() -> int:
    """The horizon of the warnings: the earliest reminder (30 days by default)."""
    return max([int(d) for d in settings.NOTIFICATIONS_REMINDER_DAYS if int(d) > 0], default=30)


def ending_subscriptions(account, moment: datetime, horizon_days: int):
    """The account's subscriptions that will end within the horizon (a day more: local days)."""
    return (
        Subscription.objects.for_account(account)
        .active(moment)
        .filter(expires_at__lte=moment + timedelta(days=horizon_days + 1))
        .filter(Q(source=Source.KEY) | Q(cancel_at_period_end=True))
        # Continued by a renewal that still stands: its seats carry on, nothing to warn about.
        .filter(Q(renewed_by__isnull=True) | Q(renewed_by__ended_at__isnull=False))
        .order_by("expires_at", "id")
    )


def expiring_certificates(account, moment: datetime, horizon_days: int):
    """The account's active certificates whose own validity ends within the horizon."""
    return Certificate.objects.filter(
        account=account,
        status=CertificateStatus.ACTIVE,
        not_after__gt=moment,
        not_after__lte=moment + timedelta(days=horizon_days + 1),
    ).order_by("not_after", "id")


def certificate_days_left(certificate: Certificate, account, moment: datetime | None = None) -> int | None:
    """Local days until the certificate's own expiry, when that is within the warning horizon."""
    moment = moment or clock.now()
    if certificate.status != CertificateStatus.ACTIVE or certificate.not_after <= moment:
        return None
    left = days_left(certificate.not_after, moment, account.time_zone)
    return left if left <= warning_days() else None


def account_endings(account, moment: datetime | None = None) -> list[Ending]:
    """Everything of the account that stops within the horizon, soonest first (two queries)."""
    moment = moment or clock.now()
    horizon = warning_days()
    zone = account.time_zone
    endings = []
    for subscription in ending_subscriptions(account, moment, horizon):
        left = days_left(subscription.expires_at, moment, zone)
        if left <= horizon:
            tier = f" {subscription.get_tier_display()}" if subscription.tier else ""
            seats = f"{subscription.seats} seat{'s' if subscription.seats != 1 else ''}"
            title = f"Your {subscription.get_product_display()}{tier} subscription ({seats})"
            endings.append(Ending("subscription", title, subscription.expires_at, left, subscription.product))
    for certificate in expiring_certificates(account, moment, horizon):
        left = days_left(certificate.not_after, moment, zone)
        if left <= horizon:
            where = " · ".join(part for part in (certificate.taxpayer, certificate.location) if part)
            title = f"The certificate {certificate.uid}" + (f" ({where})" if where else "")
            endings.append(Ending("certificate", title, certificate.not_after, left))
    return sorted(endings, key=lambda e: (e.ends_at, e.kind))
