"""The app's Prometheus counters and histograms (prometheus-client), defined once.

Incremented in process, where things happen (an increment is a few hundred nanoseconds and no
I/O): a request's latency (web/request_log.py), a redemption's outcome (keys/redemption.py),
a lockout (keys/limits.py), a Stripe event that failed (billing/webhooks.py). Figures that live
in the database (tasks waiting, seats in use) are read when /metrics is scraped (web/metrics.py).

Labels are bounded by construction: a URL pattern, never a path; an error code from a fixed
list; never a tenant, a user or a key. Under gunicorn, PROMETHEUS_MULTIPROC_DIR makes
prometheus-client keep each worker's values in files of that directory, summed at scrape time
(docs/observability.md); it must be set before this module is imported, which the environment
guarantees.
"""

from prometheus_client import Counter, Histogram

# Seconds; the hot paths answer in a few milliseconds, a certificate upload or a batch of
# 10,000 keys in seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUEST_SECONDS = Histogram(
    "fiscobridge_http_request_duration_seconds",
    "Time to answer a request, by URL pattern, method and status class",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
KEY_ACTIVATIONS = Counter("fiscobridge_key_activations", "Activation keys redeemed", ["product"])
REDEMPTION_FAILURES = Counter(
    "fiscobridge_key_redemption_failures",
    "Validate and activate attempts refused, by action and error code",
    ["action", "code"],
)
REDEEM_LOCKOUTS = Counter(
    "fiscobridge_key_redemption_lockouts",
    "Lockouts started by failed activation-key attempts, by scope (session, account, ip)",
    ["scope"],
)
STRIPE_EVENTS_FAILED = Counter(
    "fiscobridge_stripe_events_failed", "Stripe webhook events whose handling failed", ["type"]
)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(*, route: str | None, method: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(
        route=route or "unmatched",
        # Clients may send any method name: all but the usual ones share one label value.
        method=method if method in METHODS else "other",
        status=f"{status // 100}xx",
    ).observe(seconds)
