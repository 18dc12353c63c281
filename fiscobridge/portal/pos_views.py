"""POS Manager: seats, certificates (upload, revoke), and the Upgrade Plan entry."""

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from fiscobridge.billing.config import purchase_options
from fiscobridge.core import clock
from fiscobridge.core.errors import DomainError, NotFound
from fiscobridge.core.net import client_ip
from fiscobridge.core.text import has_control_characters
from fiscobridge.portal.warnings import certificate_days_left
from fiscobridge.pos.entitlement import entitlements_for_account
from fiscobridge.pos.errors import InvalidCertificateFile
from fiscobridge.pos.models import CertificateDisplayStatus
from fiscobridge.pos.queries import (
    certificates_for_account,
    get_certificate_for_account,
)
from fiscobridge.pos.services import read_certificate_upload, revoke_certificate, upload_certificate
from fiscobridge.seats import pos_seats
from fiscobridge.subscriptions.capacity import pos_capacity
from fiscobridge.web.access import customer_page
from fiscobridge.web.errors import error_context


def _searchable(text: str) -> str:
    # A search box: characters no stored value holds (NUL, other controls) are dropped, where the
    # API answers 422; the query refuses them either way (pos/queries.py).
    return "".join(char for char in text if not has_control_characters(char)).strip()[:100]


def _filters(request) -> dict:
    # Reads and, on an upload or revoke, the form that carried the list's filters along.
    data = request.POST if request.method == "POST" else request.GET
    status = data.get("status", "")
    return {
        "taxpayer": _searchable(data.get("taxpayer", "")),
        "location": _searchable(data.get("location", "")),
        "status": status if status in CertificateDisplayStatus.values else "",
    }


def _table_context(account, filters: dict) -> dict:
    certificates = list(
        certificates_for_account(
            account,
            taxpayer=filters["taxpayer"] or None,
            location=filters["location"] or None,
            status=filters["status"] or None,
        )
    )
    rights = entitlements_for_account(account)
    now = clock.now()
    rows = [
        {
            "certificate": c,
            "entitlement": rights.get(c.pk),
            "expires_in_days": certificate_days_left(c, account, now),
        }
        for c in certificates
    ]
    return {"rows": rows, "filters": filters, "statuses": CertificateDisplayStatus.values}


def _upload_block_reason(account, seats) -> str:
    if pos_capacity(account) == 0:
        return "You have no active Cloud POS subscription. Activate a key or buy seats to upload certificates."
    if seats.available == 0:
        return "All your seats are in use. Revoke a certificate or add seats with Upgrade Plan."
    return ""


@require_GET
@customer_page
def pos_manager(request, account):
    seats = pos_seats(account)
    context = {
        "active_nav": "pos_manager",
        "pos_seats": seats,
        "upload_blocked": _upload_block_reason(account, seats),
        "product": "pos",
        "open_upgrade": request.GET.get("upgrade") == "1",
        "purchase": purchase_options("pos"),
        **_table_context(account, _filters(request)),
    }
    return render(request, "portal/pos_manager.html", context)


@require_GET
@customer_page
def certificates_table(request, account):
    return render(request, "portal/pos/_certificates.html", _table_context(account, _filters(request)))


def _refreshed(request, account, template: str, extra: dict):
    seats = pos_seats(account)
    context = {
        "pos_seats": seats,
        "upload_blocked": _upload_block_reason(account, seats),
        "oob": True,
        **_table_context(account, _filters(request)),
        **extra,
    }
    return render(request, template, context)


@sensitive_post_parameters("password")
@require_POST
@customer_page
def upload(request, account):
    uploaded = request.FILES.get("file")
    password = request.POST.get("password", "")
    try:
        if uploaded is None:
            raise InvalidCertificateFile()
        certificate = upload_certificate(
            account=account,
            actor=request.user,
            data=read_certificate_upload(uploaded),
            password=password,
            ip=client_ip(request),
            file_name=uploaded.name or "",
        )
    except DomainError as error:
        return render(request, "portal/pos/_upload_result.html", {"error": error_context(error)})
    return _refreshed(request, account, "portal/pos/_upload_result.html", {"certificate": certificate})


@require_POST
@customer_page
def revoke(request, account):
    try:
        certificate = get_certificate_for_account(account, request.POST.get("uid", "")[:40])
    except NotFound:
        raise Http404 from None
    try:
        revoke_certificate(certificate=certificate, actor=request.user, ip=client_ip(request))
    except DomainError as error:
        return render(request, "portal/pos/_revoke_result.html", {"error": error_context(error)})
    return _refreshed(request, account, "portal/pos/_revoke_result.html", {"certificate": certificate})


@require_GET
@customer_page
def seat_header(request, account):
    seats = pos_seats(account)
    return render(
        request,
        "portal/pos/_seat_header.html",
        {"pos_seats": seats, "upload_blocked": _upload_block_reason(account, seats)},
    )
