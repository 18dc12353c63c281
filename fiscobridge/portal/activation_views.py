"""The Activate Key dialog: validate → review → activate, as htmx fragments."""

from django.http import HttpRequest
from django.shortcuts import render
from django.views.decorators.http import require_POST

from fiscobridge.core.errors import DomainError
from fiscobridge.keys.redemption import activate_key, validate_key
from fiscobridge.seats import int_seats, pos_seats
from fiscobridge.web.access import customer_page
from fiscobridge.web.errors import error_context
from fiscobridge.web.requester import requester_from_request

PRODUCTS = {"pos", "int"}


def _product(request: HttpRequest) -> str:
    product = request.POST.get("product", "")
    return product if product in PRODUCTS else "pos"


def _seat_context(account, product: str) -> dict:
    return {"pos_seats": pos_seats(account)} if product == "pos" else {"int_rows": int_seats(account).rows()}


@require_POST
@customer_page
def validate(request, account):
    product = _product(request)
    raw = request.POST.get("key", "")[:200]
    try:
        preview = validate_key(requester=requester_from_request(request, account), raw=raw, product=product)
    except DomainError as error:
        return render(request, "portal/activation/_error.html", {"error": error_context(error), "product": product})
    return render(
        request,
        "portal/activation/_review.html",
        {"preview": preview, "key": preview.key, "raw": raw, "product": product},
    )


@require_POST
@customer_page
def activate(request, account):
    product = _product(request)
    raw = request.POST.get("key", "")[:200]
    renew_text = request.POST.get("renew", "")
    renew = int(renew_text) if renew_text.isascii() and renew_text.isdigit() else None
    try:
        subscription = activate_key(
            requester=requester_from_request(request, account), raw=raw, product=product, renew=renew
        )
    except DomainError as error:
        return render(request, "portal/activation/_error.html", {"error": error_context(error), "product": product})
    context = {"subscription": subscription, "product": product, **_seat_context(account, product)}
    response = render(request, "portal/activation/_success.html", context)
    response["HX-Trigger"] = "seats-changed"
    return response
