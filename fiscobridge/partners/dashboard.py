"""The partner dashboard's figures: stock per package and activations per day.

Two aggregate queries over the partner's keys, whatever their number; statuses are derived
exactly as `ActivationKeyQuerySet.with_display_status` derives them.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone

from django.db.models import Count, Q
from django.db.models.functions import TruncDate

from fiscobridge.keys.models import ActivationKey, KeyStatus
from fiscobridge.subscriptions.models import Product, Tier

STATUS_ORDER = ["available", "activated", "revoked", "expired", "voided"]


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
        return self.available + self.activated + self.revoked + self.expired + self.voided

    def count(self, status: str) -> int:
        return getattr(self, status)


def _status_filters(moment) -> dict[str, Q]:
    not_expired = Q(redeem_by__isnull=True) | Q(redeem_by__gt=moment)
    return {
        "available": Q(status=KeyStatus.AVAILABLE) & not_expired,
        "expired": Q(status=KeyStatus.AVAILABLE, redeem_by__lte=moment),
        "activated": Q(status=KeyStatus.ACTIVATED, voided_at__isnull=True),
        "voided": Q(status=KeyStatus.ACTIVATED, voided_at__isnull=False),
        "revoked": Q(status=KeyStatus.REVOKED),
    }


def stock_by_package(partner, *, at) -> list[PackageStock]:
    """One row per product and tier the partner has ever issued, with counts per display status."""
    counts = {name: Count("id", filter=condition) for name, condition in _status_filters(at).items()}
    rows = (
        ActivationKey.objects.for_partner(partner).values("product", "tier").annotate(**counts)
        .order_by("-product", "tier")  # Cloud POS first, then Integrations by tier
    )
    tier_rank = {tier: index for index, tier in enumerate(Tier.values)}
    stock = [PackageStock(**row) for row in rows]
    return sorted(stock, key=lambda s: (s.product != Product.POS, tier_rank.get(s.tier, -1)))


def totals(stock: list[PackageStock]) -> dict[str, int]:
    return {status: sum(row.count(status) for row in stock) for status in STATUS_ORDER}


def activations_by_day(partner, *, at, days: int = 90) -> list[tuple[date, int]]:
    """Activations of the partner's keys per UTC day, for the `days` days ending today (zeros included)."""
    today = at.astimezone(dt_timezone.utc).date()
    first = today - timedelta(days=days - 1)
    rows = (
        ActivationKey.objects.for_partner(partner)
        # Only activated keys have an activation time (voided ones too: they were activated).
        .filter(activated_at__gte=datetime.combine(first, time(0), tzinfo=dt_timezone.utc))
        .annotate(day=TruncDate("activated_at", tzinfo=dt_timezone.utc))
        .values("day").annotate(n=Count("*")).order_by()  # COUNT(*): an index-only scan suffices
    )
    per_day = {row["day"]: row["n"] for row in rows}
    return [(first + timedelta(days=i), per_day.get(first + timedelta(days=i), 0)) for i in range(days)]
