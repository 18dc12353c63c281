"""The partner's dashboard: stock per package and activations per day."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from fiscobridge.core import clock
from fiscobridge.keys.models import KeyDisplayStatus
from fiscobridge.partners.charts import bar_chart
from fiscobridge.partners.dashboard import dashboard_figures, totals
from fiscobridge.web.access import partner_page


@require_GET
@partner_page
def dashboard(request, partner):
    moment = clock.now()
    stock, activations = dashboard_figures(partner, at=moment)
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
