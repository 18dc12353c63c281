"""GET /metrics: the Prometheus text format, behind a bearer token (METRICS_TOKEN).

Without METRICS_TOKEN the endpoint does not exist (404): figures about the business are not for
anyone who finds the URL. With it, `Authorization: Bearer <METRICS_TOKEN>` is required (404 to
anyone else, so the endpoint's existence is not confirmed either).

What a scrape returns:
- the in-process counters and histograms of core/metrics.py: with PROMETHEUS_MULTIPROC_DIR set
  (gunicorn, fiscobridge/gunicorn_conf.py), summed over every worker process's files; without
  it (tests, a single process), this process's own registry;
- figures read from the database now, by a few aggregate queries (`DatabaseFigures`): tasks
  waiting and failed, how long the oldest due task has waited, certificates and seats in use.
  Totals only: no account, partner or key ever becomes a label.
"""

import hmac
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Min, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult, get_date_max
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from fiscobridge.core import clock
from fiscobridge.integrations.models import Connection, ConnectionStatus, ConnectionTier
from fiscobridge.pos.models import Certificate
from fiscobridge.subscriptions.models import Product, Subscription, Tier

# Failed tasks are counted over this window: a number that falls back to zero once the cause is
# fixed, which is what an alert wants (the rows themselves are kept for staff much longer).
FAILED_TASKS_WINDOW = timedelta(hours=1)


class DatabaseFigures:
    """A prometheus-client collector run at each scrape: five aggregate queries in all, over
    totals, never one per tenant (docs/observability.md says which indexes serve them)."""

    def collect(self):
        now = clock.now()
        yield from self._tasks(now)
        yield from self._seats(now)

    def _tasks(self, now):
        never = get_date_max()  # what the backend stores as run_after for "as soon as possible"
        # The partial index on READY rows serves this one: only waiting tasks are read.
        waiting = DBTaskResult.objects.filter(status=TaskResultStatus.READY).aggregate(
            queued=Count("id"),
            oldest_asap=Min("enqueued_at", filter=Q(run_after=never)),
            oldest_scheduled=Min("run_after", filter=Q(run_after__lte=now)),
        )
        failed = DBTaskResult.objects.filter(
            status=TaskResultStatus.FAILED, finished_at__gt=now - FAILED_TASKS_WINDOW
        ).count()
        queued = GaugeMetricFamily("fiscobridge_tasks_queued", "Tasks waiting to run (due now or later)")
        queued.add_metric([], waiting["queued"])
        yield queued
        # A task waits from its enqueueing, or from its run_after when it was scheduled (a retry).
        due_since = [t for t in (waiting["oldest_asap"], waiting["oldest_scheduled"]) if t is not None]
        age = GaugeMetricFamily(
            "fiscobridge_tasks_oldest_queued_age_seconds",
            "How long the oldest task that is due has been waiting (0: none waiting)",
        )
        age.add_metric([], max(0.0, (now - min(due_since)).total_seconds()) if due_since else 0.0)
        yield age
        failures = GaugeMetricFamily(
            "fiscobridge_tasks_failed_last_hour", "Task runs that failed within the last hour (retries included)"
        )
        failures.add_metric([], failed)
        yield failures

    def _seats(self, now):
        certificates = GaugeMetricFamily(
            "fiscobridge_certificates_active", "Certificates holding a Cloud POS seat (active, expired or not)"
        )
        pos_used = Certificate.objects.active().count()
        certificates.add_metric([], pos_used)
        yield certificates

        used = GaugeMetricFamily(
            "fiscobridge_seats_used", "Seats in use: certificates (pos) and connections (per tier)", labels=["package"]
        )
        used.add_metric(["pos"], pos_used)
        # Every package has its series, zero included, so that a graph does not break off.
        by_tier = dict.fromkeys(ConnectionTier.values, 0)
        by_tier.update(
            Connection.objects.filter(status=ConnectionStatus.ACTIVE).values_list("tier").annotate(n=Count("id"))
        )
        for tier, count in by_tier.items():
            used.add_metric([tier], count)
        yield used

        total = GaugeMetricFamily(
            "fiscobridge_seats_total",
            "Seats of active subscriptions: pos, and per Integrations tier",
            labels=["package"],
        )
        seats = {"pos": 0, **dict.fromkeys(Tier.values, 0)}
        sums = Subscription.objects.active(now).values_list("product", "tier").annotate(seats=Sum("seats"))
        for product, tier, count in sums:
            package = "pos" if product == Product.POS else tier
            seats[package] = seats.get(package, 0) + count
        for package, count in seats.items():
            total.add_metric([package], count)
        yield total


def _registry() -> CollectorRegistry:
    """A registry for this scrape: the counters (summed over the workers' files under gunicorn,
    this process's own otherwise) and the database figures."""
    registry = CollectorRegistry()
    if settings.PROMETHEUS_MULTIPROC_DIR:
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessRegistry())
    registry.register(DatabaseFigures())
    return registry


class _ProcessRegistry:
    def collect(self):
        yield from REGISTRY.collect()


def _authorized(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    scheme, _, token = given.partition(" ")
    # Compared in constant time: the token is the only thing between the internet and the figures.
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _authorized(request):
        raise Http404()
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4)
