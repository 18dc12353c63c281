"""The partner dashboard's figures: stock per package and activations per day.

Two aggregate queries over the partner's keys, whatever their number; statuses are counted with
the filters of `keys.models.display_status_filters`, the one rule of a key's display status.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate

from fiscobridge.keys.models import ActivationKey, KeyDisplayStatus
from fiscobridge.keys.queries import display_status_counts
from fiscobridge.subscriptions.models import Product, Tier


@dataclass
class PackageStock:
    product: str
    tier: str
    available: int = 0
    activated: int = 0
    revoked: int = 0
    expired: int = 0
    voided: int = 0

    @property
    def label(self) -> str:
        name = Product(self.product).label
        return f"{name} · {Tier(self.tier).label}" if self.tier else name

    @property
    def total(self) -> int:
        return sum(self.count(status) for status in KeyDisplayStatus.values)

    def count(self, status: str) -> int:
        return getattr(self, status)


def stock_by_package(partner, *, at) -> list[PackageStock]:
    """One row per product and tier the partner has ever issued, with counts per display status."""
    rows = (
        ActivationKey.objects.for_partner(partner)
        .values("product", "tier")
        .annotate(**display_status_counts(at))
        .order_by("-product", "tier")  # Cloud POS first, then Integrations by tier
    )
    tier_rank = {tier: index for index, tier in enumerate(Tier.values)}
    stock = [PackageStock(**row) for row in rows]
    return sorted(stock, key=lambda s: (s.product != Product.POS, tier_rank.get(s.tier, -1)))


def totals(stock: list[PackageStock]) -> dict[str, int]:
    return {status: sum(row.count(status) for row in stock) for status in KeyDisplayStatus.values}


def activations_by_day(partner, *, at, days: int = 90) -> list[tuple[date, int]]:
    """Activations of the partner's keys per UTC day, for the `days` days ending today (zeros included)."""
    today = at.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    rows = (
        ActivationKey.objects.for_partner(partner)
        # Only activated keys have an activation time (voided ones too: they were activated).
        .filter(activated_at__gte=datetime.combine(first, time(0), tzinfo=UTC))
        .annotate(day=TruncDate("activated_at", tzinfo=UTC))
        .values("day")
        .annotate(n=Count("*"))
        .order_by()  # COUNT(*): an index-only scan suffices
    )
    per_day = {row["day"]: row["n"] for row in rows}
    return [(first + timedelta(days=i), per_day.get(first + timedelta(days=i), 0)) for i in range(days)]
