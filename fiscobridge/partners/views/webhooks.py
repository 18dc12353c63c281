"""The partner's webhook endpoints: add (the secret shown once), enable/disable, delete, and each
endpoint's deliveries with Resend (docs/webhooks.md)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fiscobridge.core.errors import DomainError, InvalidInput, NotFound
from fiscobridge.core.net import client_ip
from fiscobridge.web.access import partner_page
from fiscobridge.webhooks.models import EventType
from fiscobridge.webhooks.queries import (
    deliveries_of,
    endpoints_of,
    get_delivery_for_partner,
    get_endpoint_for_partner,
)
from fiscobridge.webhooks.services import create_endpoint, delete_endpoint, resend_delivery, update_endpoint


def _endpoint_or_404(partner, endpoint_id):
    try:
        return get_endpoint_for_partner(partner, endpoint_id)
    except NotFound:
        raise Http404 from None


def _event_choices(chosen) -> list[dict]:
    return [{"value": e.value, "label": e.label, "checked": e.value in chosen} for e in EventType]


@never_cache  # the new endpoint's secret is in this answer
@require_http_methods(["GET", "POST"])
@partner_page
def webhooks(request, partner):
    created = error = None
    form = {"url": "", "description": "", "events": list(EventType.values)}
    if request.method == "POST":
        form = {
            "url": request.POST.get("url", "").strip()[:2000],
            "description": request.POST.get("description", "").strip()[:200],
            "events": request.POST.getlist("events"),
        }
        try:
            created = create_endpoint(
                partner=partner,
                actor=request.user,
                url=form["url"],
                events=form["events"],
                description=form["description"],
                ip=client_ip(request),
            )
        except InvalidInput as refused:
            error = {"message": refused.message, "field": (refused.details or {}).get("field")}
        else:
            form = {"url": "", "description": "", "events": list(EventType.values)}
    return render(
        request,
        "partners/webhooks.html",
        {
            "active_nav": "webhooks",
            "endpoints": endpoints_of(partner),
            "created": created,
            "error": error,
            "form": form,
            "event_choices": _event_choices(form["events"]),
        },
        status=422 if error else 200,
    )


@require_GET
@partner_page
def endpoint_detail(request, partner, endpoint_id: int):
    endpoint = _endpoint_or_404(partner, endpoint_id)
    return render(
        request,
        "partners/webhook_detail.html",
        {"active_nav": "webhooks", "endpoint": endpoint, "deliveries": deliveries_of(endpoint)},
    )


@require_POST
@partner_page
def toggle_endpoint(request, partner, endpoint_id: int):
    endpoint = _endpoint_or_404(partner, endpoint_id)
    enable = not endpoint.enabled
    update_endpoint(endpoint=endpoint, actor=request.user, enabled=enable, ip=client_ip(request))
    messages.success(request, f"{'Enabled' if enable else 'Disabled'} {endpoint.url}.")
    return redirect("partners:webhooks")


@require_POST
@partner_page
def remove_endpoint(request, partner, endpoint_id: int):
    endpoint = _endpoint_or_404(partner, endpoint_id)
    delete_endpoint(endpoint=endpoint, actor=request.user, ip=client_ip(request))
    messages.success(request, f"Deleted {endpoint.url} and its delivery log.")
    return redirect("partners:webhooks")


@require_POST
@partner_page
def resend(request, partner, delivery_id: int):
    """htmx: the delivery's row, now pending again; without htmx, back to the endpoint's page."""
    try:
        delivery = get_delivery_for_partner(partner, delivery_id)
    except NotFound:
        raise Http404 from None
    error = None
    try:
        delivery = resend_delivery(delivery=delivery, actor=request.user, ip=client_ip(request))
    except DomainError as refused:
        error = refused.message
    if request.htmx:
        return render(
            request, "partners/webhooks/_delivery_row.html", {"d": delivery, "resent": error is None, "error": error}
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Event {delivery.event_id} queued to be sent again.")
    return redirect("partners:webhook_detail", endpoint_id=delivery.endpoint_id)
