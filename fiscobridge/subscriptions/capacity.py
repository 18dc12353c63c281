"""Seats an account may use, per product and Integrations tier (SPEC 3)."""

from dataclasses import dataclass

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
