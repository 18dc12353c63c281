"""The partner's keys: the filtered, keyset-paged list and its htmx table."""

from urllib.parse import urlencode

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from fiscobridge.core.errors import InvalidInput
from fiscobridge.core.ids import is_storable_id
from fiscobridge.keys.codes import is_full_key, search_term
from fiscobridge.keys.models import KeyBatch, KeyDisplayStatus
from fiscobridge.keys.queries import search_keys
from fiscobridge.subscriptions.models import Product, Tier
from fiscobridge.web.access import partner_page
from fiscobridge.web.cursor import decode_cursor, encode_cursor
from fiscobridge.web.errors import InvalidCursor

PAGE_SIZE = 50
RECENT_BATCHES = 100


def list_filters(request) -> dict:
    """The list's filters from the query string; anything unknown is dropped, never an error."""
    get = request.GET
    batch = get.get("batch", "").strip()
    batch_id = (
        int(batch) if batch.isascii() and batch.isdigit() and len(batch) < 20 and is_storable_id(int(batch)) else None
    )
    return {
        "status": get.get("status", "") if get.get("status", "") in KeyDisplayStatus.values else "",
        "product": get.get("product", "") if get.get("product", "") in Product.values else "",
        "tier": get.get("tier", "") if get.get("tier", "") in Tier.values else "",
        "batch": batch_id,
        "q": search_term(get.get("q", "").strip()[:200]),
    }


def query_string(filters: dict, **extra) -> str:
    pairs = {**filters, **extra}
    return urlencode({k: v for k, v in pairs.items() if v not in ("", None)})


def search_page(partner, filters: dict, *, before_id=None, limit=None):
    return search_keys(
        partner,
        status=filters["status"] or None,
        product=filters["product"] or None,
        tier=filters["tier"] or None,
        batch=filters["batch"],
        q=filters["q"] or None,
        before_id=before_id,
        limit=limit or PAGE_SIZE,
    )


def _table_context(request, partner) -> dict:
    filters = list_filters(request)
    cursor = request.GET.get("cursor", "")[:64]
    before, notice = None, ""
    if cursor:
        try:
            before = decode_cursor(cursor)
        except InvalidCursor:
            notice = "That page link is no longer valid: showing your newest keys."
    error = ""
    try:
        keys, has_more = search_page(partner, filters, before_id=before)
    except InvalidInput as problem:
        keys, has_more, error = [], False, problem.message
    qs = query_string(filters)
    return {
        "keys": keys,
        "filters": filters,
        "query": qs,
        "error": error,
        "notice": notice,
        "paged": before is not None,
        "next_query": query_string(filters, cursor=encode_cursor(keys[-1].pk)) if has_more else "",
        "filtered": any(v not in ("", None) for v in filters.values()),
    }


def _batch_choices(partner, selected: int | None) -> list[KeyBatch]:
    batches = list(KeyBatch.objects.filter(partner=partner).order_by("-id")[:RECENT_BATCHES])
    if selected and all(b.pk != selected for b in batches):
        batches += list(KeyBatch.objects.filter(partner=partner, pk=selected))
    return batches


def _without_full_key(request):
    """A whole key in the query string: the same search again by its last group (a redirect),
    so the key leaves the address bar and every later link. Browsers with JavaScript reduce it
    before the request (static/js/partner.js); this is for the others."""
    if not is_full_key(request.GET.get("q", "")):
        return None
    messages.info(
        request, "A full key never goes in an address: searching by its last group. Use Lookup to find one key."
    )
    return redirect(f"{request.path}?{query_string(list_filters(request))}")


@require_GET
@partner_page
def keys(request, partner):
    if (reduced := _without_full_key(request)) is not None:
        return reduced
    context = _table_context(request, partner)
    return render(
        request,
        "partners/keys.html",
        {
            **context,
            "active_nav": "keys",
            "statuses": KeyDisplayStatus.values,
            "products": Product.choices,
            "tiers": Tier.choices,
            "batches": _batch_choices(partner, context["filters"]["batch"]),
        },
    )


@require_GET
@partner_page
def keys_table(request, partner):
    """The table alone, for htmx: the address bar follows the filters, so reload and back work."""
    if (reduced := _without_full_key(request)) is not None:
        return reduced
    context = _table_context(request, partner)
    response = render(request, "partners/keys/_table.html", {**context, "announce": True})
    cursor = request.GET.get("cursor", "")[:64]
    query = query_string(context["filters"], cursor=cursor if context["paged"] else "")
    response["HX-Push-Url"] = reverse("partners:keys") + (f"?{query}" if query else "")
    return response
