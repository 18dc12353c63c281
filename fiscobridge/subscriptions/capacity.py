"""Seats an account may use, per product and Integrations tier (SPEC 3)."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Sum

from fiscobridge.core import clock
from fiscobridge.subscriptions.models import Product, Subscription, Tier


def pos_capacity(account, at=None) -> int:
    total = (
        Subscription.objects.for_account(account).active(at).filter(product=Product.POS).aggregate(s=Sum("seats"))["s"]
    )
    return total or 0


def int_capacity_by_tier(account, at=None) -> dict[str, int]:
    rows = (
        Subscription.objects.for_account(account)
        .active(at)
        .filter(product=Product.INT)
        .values("tier")
        .annotate(s=Sum("seats"))
    )
    by_tier = {tier.value: 0 for tier in Tier}
    for row in rows:
        by_tier[row["tier"]] = row["s"]
    return by_tier


@dataclass(frozen=True)
class TrialAllowance:
    connections: int
    invoices_per_month: int


def trial_allowance(capacity_by_tier: dict[str, int]) -> TrialAllowance | None:
    """The free Integrations allowance, present only while no paid Integrations seat is active."""
    if any(capacity_by_tier.values()):
        return None
    return TrialAllowance(settings.TRIAL_CONNECTIONS, settings.TRIAL_INVOICES_PER_MONTH)


def int_trial(account, at=None) -> TrialAllowance | None:
    return trial_allowance(int_capacity_by_tier(account, at or clock.now()))


def pos_capacity_falls_below(account_id: int, seats: int, *, after: datetime, until: datetime) -> datetime | None:
    """The first moment in (`after`, `until`] at which the account's Cloud POS capacity would be
    below `seats` if nothing changed (no purchase, no cancellation), from the stored dates of its
    subscriptions, scheduled renewals included; None when it stays at or above `seats`. One query.

    Capacity is a step function of time: it changes only where a subscription starts or stops
    (`expires_at`, or `ended_at` when earlier), and `active` counts a start at its instant and
    not a stop, so a renewal starting exactly when its predecessor expires leaves no gap. The
    offline lease ends there (docs/decisions.md, "Offline leases"): with several subscriptions,
    the certificate at place `seats` stays covered until the capacity drops below its place,
    whichever subscription ends first.
    """
    periods = []
    rows = (
        Subscription.objects.filter(account_id=account_id, product=Product.POS, started_at__lt=until)
        .current(after)
        .values_list("started_at", "expires_at", "ended_at", "seats")
    )
    for started_at, expires_at, ended_at, count in rows:
        stops = min(expires_at, ended_at) if ended_at is not None else expires_at
        periods.append((started_at, stops, count))
    changes = sorted({moment for start, stop, _ in periods for moment in (start, stop) if after < moment <= until})
    for moment in changes:
        if sum(count for start, stop, count in periods if start <= moment < stop) < seats:
            return moment
    return None
