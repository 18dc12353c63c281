"""What the server may sell online: Stripe settings and the price table (docs/billing.md).

Online purchase needs the secret key, the webhook secret (without it a purchase would never
reach the portal) and at least one price of the product. Anything missing turns the feature off
with a notice; nothing here talks to Stripe.
"""

from dataclasses import dataclass

from django.conf import settings

from fiscobridge.billing.errors import InvalidSeats
from fiscobridge.subscriptions.models import BillingInterval, Product, Tier

INTERVALS = [BillingInterval.MONTH, BillingInterval.YEAR]
_SETTING_INTERVAL = {BillingInterval.MONTH: "MONTHLY", BillingInterval.YEAR: "YEARLY"}
MAX_SEATS = 1000


@dataclass(frozen=True)
class Plan:
    """One Stripe price: what a subscription item of that price grants."""

    product: str
    tier: str  # "" for Cloud POS
    interval: str
    price_id: str


def _setting_name(product: str, tier: str, interval: str) -> str:
    middle = "POS" if product == Product.POS else f"INT_{tier.upper()}"
    return f"STRIPE_PRICE_{middle}_{_SETTING_INTERVAL[interval]}"


def all_plans() -> list[Plan]:
    combos = [(Product.POS.value, "")] + [(Product.INT.value, tier.value) for tier in Tier]
    plans = []
    for product, tier in combos:
        for interval in INTERVALS:
            price_id = getattr(settings, _setting_name(product, tier, interval), "") or ""
            if price_id:
                plans.append(Plan(product, tier, interval.value, price_id))
    return plans


def plan_for_price(price_id: str) -> Plan | None:
    return next((plan for plan in all_plans() if plan.price_id == price_id), None)


def find_plan(*, product: str, tier: str, interval: str) -> Plan | None:
    return next((p for p in all_plans() if (p.product, p.tier, p.interval) == (product, tier, interval)), None)


def stripe_enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)


@dataclass(frozen=True)
class PurchaseOptions:
    """What the Purchase Seats form offers for one product."""

    product: str
    available: bool
    tiers: list[tuple[str, str]]  # (value, label), Integrations only
    intervals: list[tuple[str, str]]
    max_seats: int = MAX_SEATS


def purchase_options(product: str) -> PurchaseOptions:
    plans = [p for p in all_plans() if p.product == product] if stripe_enabled() else []
    tiers = (
        [(t.value, t.label) for t in Tier if any(p.tier == t.value for p in plans)] if product == Product.INT else []
    )
    intervals = [(i.value, i.label) for i in INTERVALS if any(p.interval == i.value for p in plans)]
    return PurchaseOptions(product=product, available=bool(plans), tiers=tiers, intervals=intervals)


def valid_seats(seats) -> int:
    try:
        value = int(seats)
    except (TypeError, ValueError):
        raise InvalidSeats() from None
    if not 1 <= value <= MAX_SEATS:
        raise InvalidSeats()
    return value
