"""Buy online: Purchase Seats → Stripe Checkout, its success and cancel pages, Manage in Stripe
(Customer Portal), seat changes and the invoices list. Every change goes through
fiscobridge.billing; the account always comes from the signed-in user.
"""

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from fiscobridge.billing.checkout import open_customer_portal, start_checkout
from fiscobridge.billing.config import valid_seats
from fiscobridge.billing.prices import quotes
from fiscobridge.billing.queries import (
    checkout_subscriptions,
    get_checkout_for_account,
    get_stripe_subscription_for_account,
    invoices_for_account,
)
from fiscobridge.billing.seat_changes import change_stripe_seats
from fiscobridge.core.errors import DomainError, NotFound
from fiscobridge.core.net import client_ip
from fiscobridge.seats import int_seats, pos_seats
from fiscobridge.web.access import customer_page
from fiscobridge.web.errors import error_context

PRODUCTS = {"pos", "int"}


def _product(value: str) -> str:
    return value if value in PRODUCTS else "pos"


def _see_other(url: str) -> HttpResponse:
    """After a POST, send the browser to Stripe (303: the next request is a GET)."""
    return HttpResponse(status=303, headers={"Location": url})


def _error_page(request, error: DomainError, *, back: str):
    """A full page for a plain (non-htmx) form post that failed; `back` is where it came from."""
    return render(
        request,
        "portal/billing/error.html",
        {
            "error": error_context(error),
            "back": back,
            "active_nav": back,
        },
        status=error.http_status if 400 <= error.http_status < 600 else 400,
    )


@require_POST
@customer_page
def checkout(request, account):
    product = _product(request.POST.get("product", ""))
    try:
        started = start_checkout(
            account=account,
            actor=request.user,
            product=product,
            tier=request.POST.get("tier", "")[:20],
            seats=request.POST.get("seats", "")[:10],
            interval=request.POST.get("interval", "")[:10],
            ip=client_ip(request),
        )
    except DomainError as error:
        if request.htmx:
            return render(request, "portal/billing/_purchase_error.html", {"error": error_context(error)})
        return _error_page(request, error, back="pos_manager" if product == "pos" else "integrations")
    if request.htmx:
        # htmx follows HX-Redirect with a full page load: the browser leaves for Stripe.
        return HttpResponse(status=204, headers={"HX-Redirect": started.url})
    return _see_other(started.url)


@require_GET
@customer_page
def price_quote(request, account):
    """Purchase Seats' price lines for the chosen package and seats (htmx, as the form changes)."""
    product = _product(request.GET.get("product", ""))
    tier = request.GET.get("tier", "")[:20] if product == "int" else ""
    try:
        seats = valid_seats(request.GET.get("seats", "")[:10])
    except DomainError as error:
        return render(request, "portal/billing/_price_quote.html", {"error": error_context(error)})
    return render(
        request,
        "portal/billing/_price_quote.html",
        {"quotes": quotes(product=product, tier=tier, seats=seats), "seats": seats},
    )


def _checkout_context(account, session_id: str) -> dict:
    try:
        checkout = get_checkout_for_account(account, session_id)
    except NotFound:
        raise Http404 from None
    rows = checkout_subscriptions(checkout)
    return {
        "checkout": checkout,
        "rows": rows,
        "done": checkout.completed_at is not None and bool(rows),
        "pos_seats": pos_seats(account) if checkout.product == "pos" else None,
        "int_rows": int_seats(account).rows() if checkout.product == "int" else None,
    }


@require_GET
@customer_page
def checkout_success(request, account):
    context = _checkout_context(account, request.GET.get("session_id", ""))
    nav = "pos_manager" if context["checkout"].product == "pos" else "integrations"
    return render(request, "portal/billing/checkout_success.html", {"active_nav": nav, **context})


@require_GET
@customer_page
def checkout_status(request, account):
    """The success page polls this until the webhook has added the seats."""
    context = _checkout_context(account, request.GET.get("session_id", ""))
    response = render(request, "portal/billing/_checkout_status.html", context)
    if context["done"]:
        response["HX-Trigger"] = "seats-changed"
    return response


@require_GET
@customer_page
def checkout_cancelled(request, account):
    product = _product(request.GET.get("product", ""))
    return render(
        request,
        "portal/billing/checkout_cancelled.html",
        {
            "product": product,
            "active_nav": "pos_manager" if product == "pos" else "integrations",
        },
    )


@require_POST
@customer_page
def customer_portal(request, account):
    try:
        url = open_customer_portal(account=account, actor=request.user, ip=client_ip(request))
    except DomainError as error:
        return _error_page(request, error, back="subscriptions")
    return _see_other(url)


@require_POST
@customer_page
def change_seats(request, account):
    try:
        subscription = get_stripe_subscription_for_account(account, request.POST.get("subscription", "")[:20])
    except NotFound:
        raise Http404 from None
    before = subscription.seats
    try:
        subscription = change_stripe_seats(
            account=account,
            subscription=subscription,
            seats=request.POST.get("seats", "")[:10],
            actor=request.user,
            ip=client_ip(request),
        )
    except DomainError as error:
        return render(
            request,
            "portal/billing/_seat_change_result.html",
            {"error": error_context(error), "subscription": subscription},
        )
    response = render(
        request,
        "portal/billing/_seat_change_result.html",
        {"subscription": subscription, "before": before, "pos_seats": pos_seats(account)},
    )
    response["HX-Trigger"] = "seats-changed"
    return response


@require_GET
@customer_page
def invoices(request, account):
    try:
        rows = invoices_for_account(account)
    except DomainError as error:  # Stripe unreachable: a notice in the panel, never a broken page
        return render(request, "portal/billing/_invoices.html", {"error": error_context(error)})
    return render(request, "portal/billing/_invoices.html", {"invoices": rows})
