"""The partner dashboard's figures: stock per package and activations per day.

Aggregate queries over the partner's rollup rows (keys/rollup.py: one row per batch, one per
hour with activations, and the activations not yet folded into them), never over its keys: the
same numbers as counting the keys with `keys.models.display_status_filters`, at any number of
keys. `dashboard_figures` reads them all in one snapshot.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection, transaction
from django.db.models import BooleanField, Count, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import TruncDate

from fiscobridge.core.localtime import local_date, start_of_day, zone
from fiscobridge.keys.models import ActivationHour, KeyBatchCounts, KeyDisplayStatus, PendingActivation
from fiscobridge.keys.rollup import display_status_sums
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


@dataclass(frozen=True)
class Pending:
    """A partner's activations not folded into the rollup yet, grouped as the dashboard needs
    them: by package, by whether the batch is past its redeem-by, and by local day."""

    rows: list[dict]  # product, tier, past, day, n

    @classmethod
    def of(cls, partner, *, at) -> "Pending":
        past = ExpressionWrapper(Q(batch__redeem_by__lte=at), output_field=BooleanField())
        rows = (
            PendingActivation.objects.filter(partner=partner)
            .annotate(day=TruncDate("hour", tzinfo=zone(partner.time_zone)), past=past)
            .values("day", "past", product=F("batch__product"), tier=F("batch__tier"))
            .annotate(n=Count("pk"))
            .order_by()
        )
        return cls(list(rows))


def dashboard_figures(partner, *, at) -> tuple[list["PackageStock"], list[tuple[date, int]]]:
    """The stock per package and the activations per day, read in one snapshot (a transaction:
    on PostgreSQL read-only REPEATABLE READ; SQLite's transaction reads one snapshot anyway), so
    that a fold committing between two of the queries can neither count an activation twice nor
    miss it. The pending activations are read once, for both."""
    outermost = not connection.in_atomic_block  # inside a transaction (a test's), it is that one's
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        pending = Pending.of(partner, at=at)
        return stock_by_package(partner, at=at, pending=pending), activations_by_day(partner, at=at, pending=pending)


def stock_by_package(partner, *, at, pending: Pending | None = None) -> list[PackageStock]:
    """One row per product and tier the partner has ever issued, with counts per display status."""
    rows = (
        KeyBatchCounts.objects.filter(batch__partner=partner)
        .values(product=F("batch__product"), tier=F("batch__tier"))
        .annotate(**display_status_sums(at))
        .order_by()
    )
    tier_rank = {tier: index for index, tier in enumerate(Tier.values)}
    stock = {(row["product"], row["tier"]): PackageStock(**row) for row in rows}
    # The activations not folded yet: counted as available (expired past the batch's redeem-by)
    # by the counts rows, so moved from there to activated.
    for row in (pending or Pending.of(partner, at=at)).rows:
        package = stock.get((row["product"], row["tier"]))
        if package is not None:  # a batch without counts is counted when it gets them
            if row["past"]:
                package.expired -= row["n"]
            else:
                package.available -= row["n"]
            package.activated += row["n"]
    return sorted(stock.values(), key=lambda s: (s.product != Product.POS, tier_rank.get(s.tier, -1)))


def totals(stock: list[PackageStock]) -> dict[str, int]:
    return {status: sum(row.count(status) for row in stock) for status in KeyDisplayStatus.values}


def activations_by_day(partner, *, at, days: int = 90, pending: Pending | None = None) -> list[tuple[date, int]]:
    """Activations of the partner's keys per local day (the partner's zone), for the `days` days
    ending today (zeros included).

    Counted from hourly buckets: exact for zones whose offset is whole hours (the three markets);
    in a :30 or :45 zone an activation in the bucket's hour that crosses local midnight lands on
    the day its hour began."""
    tz = zone(partner.time_zone)
    today = local_date(at, partner.time_zone)
    first = today - timedelta(days=days - 1)
    rows = (
        # Every activation counts in its UTC hour, voided keys' too (they were activated).
        ActivationHour.objects.filter(partner=partner, hour__gte=start_of_day(first, partner.time_zone))
        .annotate(day=TruncDate("hour", tzinfo=tz))
        .values("day")
        .annotate(n=Sum("activations"))
        .order_by()
    )
    per_day = {row["day"]: row["n"] for row in rows}
    for row in (pending or Pending.of(partner, at=at)).rows:  # one row per activation not folded yet
        per_day[row["day"]] = per_day.get(row["day"], 0) + row["n"]
    return [(first + timedelta(days=i), per_day.get(first + timedelta(days=i), 0)) for i in range(days)]
