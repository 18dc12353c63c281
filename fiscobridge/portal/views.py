"""Client Portal pages that no single domain owns: home, Billing, Activity, API tokens."""

import sys

from django.conf import settings
from django.core.paginator import Paginator
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from fiscobridge.audit.actions import action_label
from fiscobridge.audit.models import Event
from fiscobridge.billing.config import purchase_options, stripe_enabled
from fiscobridge.billing.queries import has_stripe_customer
from fiscobridge.core import clock
from fiscobridge.seats import int_seats, pos_seats
from fiscobridge.subscriptions.models import Product, Source, Status, Subscription, Tier
from fiscobridge.tasks.models import WorkerHeartbeat
from fiscobridge.web.access import customer_page
from fiscobridge.web.guards import DATABASE_ERRORS, database_unavailable, is_database_unavailable
from fiscobridge.web.settings_page import settings_views
from fiscobridge.web.tokens import token_views


def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_authenticated and user.account_id:
        return redirect("pos_manager")
    if user.is_authenticated and user.partner_id:
        return redirect("partners:dashboard")
    if user.is_authenticated and user.is_staff:
        return redirect("admin:index")
    return render(request, "portal/home.html")


def healthz(request: HttpRequest) -> JsonResponse:
    """The framework floor for benchmarks and a liveness probe: no database, no session."""
    return JsonResponse({"ok": True})


_migrations_applied = False  # once true in a process it stays true: new migrations come with new code


def _check_database() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return None


def _check_migrations() -> str | None:
    global _migrations_applied
    if not _migrations_applied:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            return f"{len(pending)} unapplied migration(s): run `fiscobridge manage migrate`"
        _migrations_applied = True
    return None


def _check_worker() -> str | None:
    newest = WorkerHeartbeat.objects.order_by("-last_seen_at").values_list("last_seen_at", flat=True).first()
    limit = settings.READY_WORKER_MAX_AGE_SECONDS
    if newest is None:
        return "no task worker has ever reported: start `fiscobridge worker`"
    age = (clock.now() - newest).total_seconds()
    if age > limit:
        return f"the newest task worker heartbeat is {age:.0f} s old (limit {limit} s)"
    return None


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database answers, every migration is applied, a task worker is alive.
    503 names the failing part (docs/operations.md)."""
    checks = {}
    for name, check in (("database", _check_database), ("migrations", _check_migrations), ("worker", _check_worker)):
        try:
            checks[name] = check() or "ok"
        except DATABASE_ERRORS as error:
            checks[name] = f"database unavailable: {type(error).__name__}"
            if name == "database":
                checks.update(migrations="not checked", worker="not checked")
                break
    failing = [name for name, state in checks.items() if state not in ("ok", "not checked")]
    status = 503 if failing else 200
    return JsonResponse({"ok": not failing, "failing": failing, "checks": checks}, status=status)


def _current_and_past(subscriptions):
    current = [s for s in subscriptions if s.status in (Status.ACTIVE, Status.SCHEDULED)]
    past = [s for s in subscriptions if s.status not in (Status.ACTIVE, Status.SCHEDULED)]
    return current, past


@require_GET
@customer_page
def subscriptions(request, account):
    subs = list(Subscription.objects.for_account(account).order_by("started_at", "id"))
    pos_current, pos_past = _current_and_past([s for s in subs if s.product == Product.POS])
    int_subs = [s for s in subs if s.product == Product.INT]
    int_current, int_past = _current_and_past(int_subs)
    tiers = {row.package: row for row in int_seats(account).rows()}
    int_groups = [
        {"tier": tier, "seats": tiers.get(tier.value), "rows": [s for s in int_current if s.tier == tier.value]}
        for tier in Tier
    ]
    return render(
        request,
        "portal/subscriptions.html",
        {
            "active_nav": "subscriptions",
            "stripe_enabled": stripe_enabled(),
            "has_stripe_customer": has_stripe_customer(account),
            "pos_seats": pos_seats(account),
            "pos_current": pos_current,
            "int_groups": [g for g in int_groups if g["rows"]],
            "trial": tiers.get("trial"),
            "past": sorted(pos_past + int_past, key=lambda s: s.expires_at, reverse=True),
        },
    )


@require_GET
@customer_page
def buy_pos_license(request, account):
    current = list(
        Subscription.objects.for_account(account).current().filter(product=Product.POS).order_by("expires_at")
    )
    active = [s for s in current if s.status == Status.ACTIVE]
    return render(
        request,
        "portal/buy_pos.html",
        {
            "active_nav": "buy_pos",
            "pos_seats": pos_seats(account),
            "active": active,
            "scheduled": [s for s in current if s.status == Status.SCHEDULED],
            "ends_at": max((s.expires_at for s in active), default=None),
            "has_stripe": any(s.source == Source.STRIPE for s in active),
            "has_key": any(s.source == Source.KEY for s in active),
            "stripe_rows": [s for s in active if s.source == Source.STRIPE],
            "stripe_enabled": stripe_enabled(),
            "has_stripe_customer": has_stripe_customer(account),
            "purchase": purchase_options("pos"),
            "product": "pos",
        },
    )


def _activity_row(event: Event) -> dict:
    # FiscoBridge staff (a void, an admin change) appear as "FiscoBridge": their e-mail and IP
    # are not the customer's to see.
    staff = event.actor is None or event.actor.is_staff
    return {
        "event": event,
        "who": "FiscoBridge" if staff else event.actor.email,
        "ip": "" if staff else event.ip,
        "label": action_label(event.action),
    }


@require_GET
@customer_page
def activity(request, account):
    events = Event.objects.filter(account=account).select_related("actor").order_by("-at", "-id")
    page = Paginator(events, 25).get_page(request.GET.get("page"))
    rows = [_activity_row(e) for e in page]
    return render(request, "portal/activity.html", {"active_nav": "activity", "page": page, "rows": rows})


api_tokens, revoke_token = token_views(customer_page, template="portal/tokens.html", back_to="api_tokens")
settings_page = settings_views(customer_page, template="portal/settings.html", back_to="settings")


def not_found(request, exception=None):
    return render(request, "404.html", status=404)


def server_error(request):
    # Django calls this inside its `except` block: the exception in hand tells a database that
    # cannot be reached (503, try again shortly) from a fault of ours (500).
    if is_database_unavailable(sys.exc_info()[1]):
        return database_unavailable(request)
    return render(request, "500.html", status=500)
