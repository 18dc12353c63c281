"""Seats per product and Integrations tier: total (subscriptions), used (certificates,
connections) and what follows from the two. The one place where these figures are assembled
for people and callers: page headers, the API, billing's seat changes and the staff admin all
read them here. The seat checks under the account lock (`pos.services`, `integrations.services`)
and the redemption preview sit below this layer; they use the same capacity and usage functions.

Cloud POS seats are used by active certificates; Integrations seats by active connections of
their own tier. The free trial is a row of its own while it applies (SPEC 3).
"""

from dataclasses import dataclass, field
from datetime import datetime

from fiscobridge.core import clock
from fiscobridge.integrations.models import ConnectionTier
from fiscobridge.integrations.usage import active_connections_by_tier
from fiscobridge.pos.usage import active_certificate_count
from fiscobridge.subscriptions.capacity import (
    TrialAllowance,
    int_capacity_by_tier,
    pos_capacity,
    trial_allowance,
)
from fiscobridge.subscriptions.models import Product, Tier


@dataclass(frozen=True)
class Seats:
    """The seats of one package: Cloud POS (`pos`), an Integrations tier, or the trial."""

    label: str
    package: str  # "pos", "starter", "growth", "scale" or "trial"
    total: int
    used: int

    @property
    def available(self) -> int:
        return max(0, self.total - self.used)

    @property
    def over(self) -> int:
        return max(0, self.used - self.total)


@dataclass(frozen=True)
class IntegrationsSeats:
    tiers: dict[str, Seats]  # every paid tier, with or without seats
    trial: Seats | None  # while the trial applies, or while trial connections still run
    trial_allowance: TrialAllowance | None = field(default=None)

    def rows(self) -> list[Seats]:
        """The tiers that have seats or connections, then the trial: what a page header shows."""
        rows = [seats for seats in self.tiers.values() if seats.total or seats.used]
        return rows + ([self.trial] if self.trial is not None else [])


def pos_seats(account, at: datetime | None = None) -> Seats:
    return Seats(Product.POS.label, Product.POS.value, pos_capacity(account, at), active_certificate_count(account))


def int_seats(account, at: datetime | None = None) -> IntegrationsSeats:
    moment = at or clock.now()
    used = active_connections_by_tier(account)
    capacity = int_capacity_by_tier(account, moment)
    tiers = {tier.value: Seats(tier.label, tier.value, capacity[tier.value], used.get(tier.value, 0)) for tier in Tier}
    allowance = trial_allowance(capacity)
    trial = None
    if allowance is not None or used.get(ConnectionTier.TRIAL):
        trial = Seats(
            "Free trial",
            ConnectionTier.TRIAL,
            allowance.connections if allowance else 0,
            used.get(ConnectionTier.TRIAL, 0),
        )
    return IntegrationsSeats(tiers=tiers, trial=trial, trial_allowance=allowance)


def seats_of_package(account, *, product: str, tier: str = "") -> Seats:
    """The seats of one product (and Integrations tier) across every active subscription."""
    if product == Product.POS:
        return pos_seats(account)
    return int_seats(account).tiers[tier]
