"""Prices before paying (issue 12 item 5): what Purchase Seats shows, read from the configured
Stripe Prices.

Stripe is the one source of the amounts (a price changed in the Stripe dashboard is what Checkout
charges), so the portal reads each configured Price and keeps it in the cache for
STRIPE_PRICE_CACHE_SECONDS (an hour by default): the Upgrade Plan dialog costs no Stripe call on
most page views. When Stripe cannot be reached the form still works and says that Checkout shows
the price; a failed read is cached briefly too, so a Stripe outage does not slow every page.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from fiscobridge.billing import stripe_gateway
from fiscobridge.billing.config import Plan, all_plans, stripe_enabled
from fiscobridge.billing.money import money_text
from fiscobridge.core.errors import DomainError
from fiscobridge.subscriptions.models import BillingInterval

logger = logging.getLogger(__name__)

# A failed read is retried after this many seconds (not on every page view while Stripe is away).
UNAVAILABLE_CACHE_SECONDS = 60
_UNAVAILABLE = "unavailable"


def _cache_key(price_id: str) -> str:
    return f"fiscobridge:stripe-price:{price_id}"


def price_of(plan: Plan) -> stripe_gateway.RemotePrice | None:
    """The plan's Stripe Price (cached), or None when Stripe cannot tell us now."""
    key = _cache_key(plan.price_id)
    cached = cache.get(key)
    if cached == _UNAVAILABLE:
        return None
    if cached is not None:
        return cached
    try:
        price = stripe_gateway.retrieve_price(plan.price_id)
    except DomainError as error:  # not configured, unreachable, or the price id is unknown
        logger.warning("stripe price %s unavailable: %s", plan.price_id, error.code)
        cache.set(key, _UNAVAILABLE, UNAVAILABLE_CACHE_SECONDS)
        return None
    cache.set(key, price, settings.STRIPE_PRICE_CACHE_SECONDS)
    return price


@dataclass(frozen=True)
class Quote:
    """What Purchase Seats says before Checkout: the price per seat per period, the total for the
    chosen seats, and (for yearly billing, when both cycles share a currency) the saving against
    twelve months of monthly billing."""

    interval: str
    seats: int
    currency: str
    unit_amount: int
    yearly_saving_percent: int | None = None
    monthly_unit_amount: int | None = None

    @property
    def period(self) -> str:
        return "year" if self.interval == BillingInterval.YEAR else "month"

    @property
    def per_seat_text(self) -> str:
        return money_text(self.unit_amount, self.currency)

    @property
    def total_text(self) -> str:
        return money_text(self.unit_amount * self.seats, self.currency)

    @property
    def yearly_saving_text(self) -> str:
        """ "VUV 3,000 a year" for the chosen seats, against monthly billing."""
        if self.monthly_unit_amount is None:
            return ""
        saved = (self.monthly_unit_amount * 12 - self.unit_amount) * self.seats
        return money_text(saved, self.currency)


def quotes(*, product: str, tier: str, seats: int) -> list[Quote]:
    """One quote per billing cycle on sale for the package; empty when no price can be read."""
    if not stripe_enabled():
        return []
    plans = {p.interval: p for p in all_plans() if p.product == product and p.tier == tier}
    prices = {interval: price_of(plan) for interval, plan in plans.items()}
    monthly = prices.get(BillingInterval.MONTH.value)
    result = []
    for interval in (BillingInterval.MONTH.value, BillingInterval.YEAR.value):
        price = prices.get(interval)
        if price is None:
            continue
        saving = None
        monthly_amount = None
        if interval == BillingInterval.YEAR and monthly is not None and monthly.currency == price.currency:
            twelve_months = monthly.unit_amount * 12
            if twelve_months > price.unit_amount:
                saving = round((twelve_months - price.unit_amount) * 100 / twelve_months)
                monthly_amount = monthly.unit_amount
        result.append(Quote(interval, seats, price.currency, price.unit_amount, saving, monthly_amount))
    return result
