"""Seat figures for page headers (formatting of what capacity and usage say)."""

from dataclasses import dataclass

from fiscobridge.integrations.usage import active_connections_by_tier
from fiscobridge.pos.usage import active_certificate_count
from fiscobridge.subscriptions.capacity import int_capacity_by_tier, int_trial, pos_capacity
from fiscobridge.subscriptions.models import Tier


@dataclass(frozen=True)
class Seats:
    label: str
    key: str
    total: int
    used: int

    @property
    def available(self) -> int:
        return max(0, self.total - self.used)

    @property
    def over(self) -> int:
        return max(0, self.used - self.total)


def pos_seats(account) -> Seats:
    return Seats("Cloud POS", "pos", pos_capacity(account), active_certificate_count(account))


def int_seats(account) -> list[Seats]:
    """One entry per tier with seats or connections, and the trial while it applies."""
    used = active_connections_by_tier(account)
    rows = [
        Seats(tier.label, tier.value, total, used.get(tier.value, 0))
        for tier, total in ((Tier(t), n) for t, n in int_capacity_by_tier(account).items())
        if total or used.get(tier.value)
    ]
    trial = int_trial(account)
    if trial is not None or used.get("trial"):
        rows.append(Seats("Free trial", "trial", trial.connections if trial else 0, used.get("trial", 0)))
    return rows
