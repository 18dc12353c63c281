"""The partner's keys as a streamed CSV file (hints only: codes are never exported)."""

import csv
import itertools

from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET

from fiscobridge.core import clock
from fiscobridge.core.errors import InvalidInput
from fiscobridge.core.localtime import iso_local, local
from fiscobridge.partners.views.keys import list_filters, query_string, search_page
from fiscobridge.web.access import partner_page

EXPORT_CHUNK = 2000
# Excel opens a CSV file as the system's legacy code page unless it starts with a UTF-8 byte
# order mark: "CSV for Excel" (?excel=1) adds one, so "Müller" and "•" survive. The plain file
# stays without it (other tools, scripts, and RFC 4180, read it as data).
BOM = "\ufeff"


def for_excel(request) -> bool:
    return request.GET.get("excel") == "1"


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a streaming response."""

    def write(self, value):
        return value


def _cell(value) -> str:
    """Text a spreadsheet must not run as a formula (CSV injection) gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


EXPORT_COLUMNS = [
    "id",
    "hint",
    "product",
    "tier",
    "seats",
    "months",
    "status",
    "reference",
    "batch",
    "created_at",
    "redeem_by",
    "activated_at",
    "activated_account",
    "revoked_at",
    "revoked_reason",
]


def _export_rows(partner, filters: dict):
    # Moments in the partner's zone with the offset (ISO 8601, so a spreadsheet still parses
    # them). Passed explicitly: a streamed body is written after the request's middleware (and
    # its active time zone) has finished.
    zone = partner.time_zone
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    before = None
    while True:
        # Keyset chunks: each is one indexed query, so memory stays flat at any number of keys.
        chunk, has_more = search_page(partner, filters, before_id=before, limit=EXPORT_CHUNK)
        for key in chunk:
            yield writer.writerow(
                [
                    key.pk,
                    key.hint,
                    key.product,
                    key.tier,
                    key.seats,
                    key.months,
                    key.display_status,
                    _cell(key.reference),
                    key.batch_id,
                    iso_local(key.created_at, zone),
                    iso_local(key.redeem_by, zone),
                    iso_local(key.activated_at, zone),
                    _cell(key.activated_account.name) if key.activated_account_id else "",
                    iso_local(key.revoked_at, zone),
                    _cell(key.revoked_reason),
                ]
            )
        if not has_more:
            return
        before = chunk[-1].pk


@require_GET
@partner_page
def export(request, partner):
    """The filtered list as CSV, streamed. It holds hints only: codes are never exported."""
    filters = list_filters(request)
    try:
        search_page(partner, filters, limit=1)  # refuse bad input before the download starts
    except InvalidInput as error:
        messages.error(request, error.message)
        return redirect(reverse("partners:keys") + f"?{query_string(filters)}")
    rows = _export_rows(partner, filters)
    excel = for_excel(request)
    if excel:
        rows = itertools.chain([BOM], rows)
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    stamp = local(clock.now(), partner.time_zone)
    name = f"fiscobridge-keys-{stamp:%Y%m%d-%H%M%S}{'-excel' if excel else ''}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    add_never_cache_headers(response)
    return response
