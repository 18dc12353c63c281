"""The partner's dashboard: stock per package and activations per day."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from fiscobridge.core import clock
from fiscobridge.keys.models import KeyDisplayStatus
from fiscobridge.partners.charts import bar_chart
from fiscobridge.partners.dashboard import activations_by_day, dashboard_snapshot, stock_by_package, totals
from fiscobridge.web.access import partner_page


@require_GET
@partner_page
def dashboard(request, partner):
    moment = clock.now()
    with dashboard_snapshot():
        stock = stock_by_package(partner, at=moment)
        activations = activations_by_day(partner, at=moment)
    return render(
        request,
        "partners/dashboard.html",
        {
            "active_nav": "dashboard",
            "stock": stock,
            "totals": totals(stock),
            "statuses": KeyDisplayStatus.values,
            "chart": bar_chart(activations),
        },
    )
