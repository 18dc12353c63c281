"""Integrations: usage per tier and trial, connections (create, remove), Upgrade Plan for INT keys."""

from collections import Counter

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from fiscobridge.billing.config import purchase_options
from fiscobridge.core import clock
from fiscobridge.core.errors import DomainError, NotFound
from fiscobridge.core.localtime import local_date, next_month_start
from fiscobridge.core.net import client_ip
from fiscobridge.integrations.models import ConnectionType
from fiscobridge.integrations.queries import (
    connections_for_account,
    get_connection_for_account,
    usage_by_tier,
)
from fiscobridge.integrations.services import create_connection, remove_connection
from fiscobridge.seats import int_seats
from fiscobridge.web.access import customer_page
from fiscobridge.web.errors import error_context


def _context(account) -> dict:
    connections = list(connections_for_account(account, status="active"))
    usage = usage_by_tier(account)
    sharing = Counter(c.tier for c in connections)
    rows = [{"connection": c, "usage": usage[c.tier], "shared_by": sharing[c.tier]} for c in connections]
    tiers = int_seats(account).rows()
    return {
        "int_rows": tiers,
        "rows": rows,
        # Tiers of running connections at or past the warning share, for the banner above them.
        "nearly_used_up": [usage[tier] for tier in sharing if usage[tier].nearly_used_up],
        "next_month": local_date(next_month_start(clock.now(), account.time_zone), account.time_zone),
        "types": ConnectionType.choices,
        "tier_choices": [(t.package, t.label, t.available) for t in tiers],
        "can_create": any(t.available for t in tiers),
    }


@require_GET
@customer_page
def integrations(request, account):
    return render(
        request,
        "portal/integrations.html",
        {
            "active_nav": "integrations",
            "product": "int",
            "open_upgrade": request.GET.get("upgrade") == "1",
            "purchase": purchase_options("int"),
            **_context(account),
        },
    )


def _refreshed(request, account, extra: dict):
    return render(request, "portal/integrations/_result.html", {"oob": True, **_context(account), **extra})


@require_POST
@customer_page
def create(request, account):
    try:
        connection = create_connection(
            account=account,
            actor=request.user,
            type=request.POST.get("type", ""),
            tier=request.POST.get("tier", ""),
            name=request.POST.get("name", "")[:300],
            ip=client_ip(request),
        )
    except DomainError as error:
        return render(request, "portal/integrations/_result.html", {"error": error_context(error)})
    return _refreshed(request, account, {"created": connection})


@require_POST
@customer_page
def remove(request, account):
    try:
        connection = get_connection_for_account(account, request.POST.get("uid", "")[:40])
    except NotFound:
        raise Http404 from None
    try:
        remove_connection(connection=connection, actor=request.user, ip=client_ip(request))
    except DomainError as error:
        return render(request, "portal/integrations/_result.html", {"error": error_context(error)})
    return _refreshed(request, account, {"removed": connection})


@require_GET
@customer_page
def usage_header(request, account):
    return render(request, "portal/integrations/_usage_header.html", {"int_rows": int_seats(account).rows()})
