"""Partner Portal pages: dashboard, issue keys, keys (list, export, detail, revoke), lookup, API tokens.

Every view is wrapped in `partner_page` and starts its queries from the partner it is given.
Writes go through the key and account services; this module only translates requests into
their calls and their errors into what a person reads.
"""

import base64
import binascii
import csv
import secrets
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import Q
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from fiscobridge.audit.models import Event
from fiscobridge.core import clock
from fiscobridge.core.errors import DomainError, InvalidInput, NotFound
from fiscobridge.core.ids import is_storable_id
from fiscobridge.core.net import client_ip
from fiscobridge.keys.codes import KeyFormatError, search_term, squash
from fiscobridge.keys.errors import InvalidKeyFormat
from fiscobridge.keys.issuance import issue_keys
from fiscobridge.keys.models import DISPLAY_STATUSES, ActivationKey, KeyBatch
from fiscobridge.keys.queries import get_key_for_partner, lookup_key_for_partner, search_keys
from fiscobridge.keys.services import revoke_key
from fiscobridge.partners.access import partner_page
from fiscobridge.partners.models import IssueFormNonce
from fiscobridge.portal.tokens import revoke_own_token, tokens_page
from fiscobridge.partners.charts import bar_chart
from fiscobridge.partners.dashboard import STATUS_ORDER, activations_by_day, stock_by_package, totals
from fiscobridge.partners.emails import email_key_to_customer
from fiscobridge.partners.forms import IssueForm
from fiscobridge.portal.errors import error_context
from fiscobridge.subscriptions.models import Product, Tier

PAGE_SIZE = 50
EXPORT_CHUNK = 2000
RECENT_BATCHES = 100


# --------------------------------------------------------------------------- dashboard


@require_GET
@partner_page
def dashboard(request, partner):
    moment = clock.now()
    stock = stock_by_package(partner, at=moment)
    return render(request, "partners/dashboard.html", {
        "active_nav": "dashboard", "stock": stock, "totals": totals(stock), "statuses": STATUS_ORDER,
        "chart": bar_chart(activations_by_day(partner, at=moment)),
    })


# --------------------------------------------------------------------------- issue keys

NONCE_LIFETIME = timedelta(days=1)


def _form_nonce(request) -> str:
    """A one-time token for the issue form, so a re-sent POST (reload, back, double click,
    two tabs) never issues a second batch."""
    IssueFormNonce.objects.filter(user=request.user, created_at__lt=clock.now() - NONCE_LIFETIME).delete()
    return IssueFormNonce.objects.create(user=request.user, nonce=secrets.token_urlsafe(24)).nonce


def _use_form_nonce(request, nonce: str) -> bool:
    """Claim the token: of two requests carrying it, exactly one deletes the row."""
    if not nonce or len(nonce) > 64:
        return False
    deleted, _ = IssueFormNonce.objects.filter(user=request.user, nonce=nonce).delete()
    return deleted == 1


def _issue_response(request, template: str, context: dict):
    """htmx swaps the inner part in place (a reload then shows an empty form); without
    JavaScript the same part comes inside the full page."""
    context = {"active_nav": "issue", "inner": template, **context}
    if request.htmx:
        return render(request, template, context)
    return render(request, "partners/issue.html", context)


@never_cache  # the answer may hold codes: no browser or proxy may keep a copy
@require_http_methods(["GET", "POST"])
@partner_page
@sensitive_variables("issued")
def issue(request, partner):
    if request.method == "GET":
        return _issue_response(request, "partners/issue/_form.html",
                               {"form": IssueForm(), "nonce": _form_nonce(request)})
    if not _use_form_nonce(request, request.POST.get("nonce", "")):
        latest = KeyBatch.objects.filter(partner=partner, created_by=request.user).order_by("-id").first()
        return _issue_response(request, "partners/issue/_resent.html", {"latest": latest})
    form = IssueForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            issued = issue_keys(
                partner=partner, actor=request.user, product=data["product"], tier=data["tier"],
                seats=data["seats"], months=data["months"], quantity=data["quantity"],
                reference=data["reference"], redeem_by=form.redeem_by_deadline(), ip=client_ip(request),
            )
        except InvalidInput as error:
            form.add_error(error.details.get("field") if error.details.get("field") in form.fields else None,
                           error.message)
        else:
            # issue_keys has committed by now (requests are not wrapped in a transaction), so
            # the e-mail only ever carries a key that exists.
            emailed = None
            if data.get("email") and len(issued.keys) == 1:
                key = ActivationKey.objects.get(pk=issued.keys[0].id)
                emailed = email_key_to_customer(key=key, code=issued.keys[0].code, to=data.get("email"), partner=partner,
                                                actor=request.user, ip=client_ip(request))
            return _issue_response(request, "partners/issue/_issued.html", {
                "batch": issued.batch, "codes": issued.keys, "email": data.get("email"), "emailed": emailed,
            })
    return _issue_response(request, "partners/issue/_form.html", {"form": form, "nonce": _form_nonce(request)})


# --------------------------------------------------------------------------- keys list and export


def _encode_cursor(key_id: int) -> str:
    return base64.urlsafe_b64encode(f"k{key_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        key_id = int(text[1:]) if text.startswith("k") else 0
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return key_id if is_storable_id(key_id) else None


def _filters(request) -> dict:
    """The list's filters from the query string; anything unknown is dropped, never an error."""
    get = request.GET
    batch = get.get("batch", "").strip()
    batch_id = int(batch) if batch.isascii() and batch.isdigit() and len(batch) < 20 and is_storable_id(int(batch)) else None
    return {
        "status": get.get("status", "") if get.get("status", "") in DISPLAY_STATUSES else "",
        "product": get.get("product", "") if get.get("product", "") in Product.values else "",
        "tier": get.get("tier", "") if get.get("tier", "") in Tier.values else "",
        "batch": batch_id,
        "q": search_term(get.get("q", "").strip()[:200]),
    }


def _query_string(filters: dict, **extra) -> str:
    pairs = {**filters, **extra}
    return urlencode({k: v for k, v in pairs.items() if v not in ("", None)})


def _search(partner, filters: dict, *, before_id=None, limit=None):
    return search_keys(partner, status=filters["status"] or None, product=filters["product"] or None,
                       tier=filters["tier"] or None, batch=filters["batch"], q=filters["q"] or None,
                       before_id=before_id, limit=limit or PAGE_SIZE)


def _table_context(request, partner) -> dict:
    filters = _filters(request)
    cursor = request.GET.get("cursor", "")[:64]
    before = _decode_cursor(cursor) if cursor else None
    notice = "That page link is no longer valid: showing your newest keys." if cursor and before is None else ""
    error = ""
    try:
        keys, has_more = _search(partner, filters, before_id=before)
    except InvalidInput as problem:
        keys, has_more, error = [], False, problem.message
    qs = _query_string(filters)
    return {
        "keys": keys, "filters": filters, "query": qs, "error": error, "notice": notice,
        "paged": before is not None,
        "next_query": _query_string(filters, cursor=_encode_cursor(keys[-1].pk)) if has_more else "",
        "filtered": any(v not in ("", None) for v in filters.values()),
    }


def _batch_choices(partner, selected: int | None) -> list[KeyBatch]:
    batches = list(KeyBatch.objects.filter(partner=partner).order_by("-id")[:RECENT_BATCHES])
    if selected and all(b.pk != selected for b in batches):
        batches += list(KeyBatch.objects.filter(partner=partner, pk=selected))
    return batches


@require_GET
@partner_page
def keys(request, partner):
    context = _table_context(request, partner)
    return render(request, "partners/keys.html", {
        **context, "active_nav": "keys", "statuses": DISPLAY_STATUSES, "products": Product.choices,
        "tiers": Tier.choices, "batches": _batch_choices(partner, context["filters"]["batch"]),
    })


@require_GET
@partner_page
def keys_table(request, partner):
    """The table alone, for htmx: the address bar follows the filters, so reload and back work."""
    context = _table_context(request, partner)
    response = render(request, "partners/keys/_table.html", {**context, "announce": True})
    cursor = request.GET.get("cursor", "")[:64]
    query = _query_string(context["filters"], cursor=cursor if context["paged"] else "")
    response["HX-Push-Url"] = reverse("partners:keys") + (f"?{query}" if query else "")
    return response


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a streaming response."""

    def write(self, value):
        return value


def _cell(value) -> str:
    """Text a spreadsheet must not run as a formula (CSV injection) gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


EXPORT_COLUMNS = ["id", "hint", "product", "tier", "seats", "months", "status", "reference", "batch", "created_at",
                  "redeem_by", "activated_at", "activated_account", "revoked_at", "revoked_reason"]


def _export_rows(partner, filters: dict):
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    before = None
    while True:
        # Keyset chunks: each is one indexed query, so memory stays flat at any number of keys.
        chunk, has_more = _search(partner, filters, before_id=before, limit=EXPORT_CHUNK)
        for key in chunk:
            yield writer.writerow([
                key.pk, key.hint, key.product, key.tier, key.seats, key.months, key.display_status,
                _cell(key.reference), key.batch_id, key.created_at.isoformat(),
                key.redeem_by.isoformat() if key.redeem_by else "",
                key.activated_at.isoformat() if key.activated_at else "",
                _cell(key.activated_account.name) if key.activated_account_id else "",
                key.revoked_at.isoformat() if key.revoked_at else "", _cell(key.revoked_reason),
            ])
        if not has_more:
            return
        before = chunk[-1].pk


@require_GET
@partner_page
def export(request, partner):
    """The filtered list as CSV, streamed. It holds hints only: codes are never exported."""
    filters = _filters(request)
    try:
        _search(partner, filters, limit=1)  # refuse bad input before the download starts
    except InvalidInput as error:
        messages.error(request, error.message)
        return redirect(reverse("partners:keys") + f"?{_query_string(filters)}")
    response = StreamingHttpResponse(_export_rows(partner, filters), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="fiscobridge-keys-{clock.now():%Y%m%d-%H%M%S}.csv"'
    add_never_cache_headers(response)
    return response


# --------------------------------------------------------------------------- one key


def _key_or_404(partner, key_id: int) -> ActivationKey:
    try:
        return get_key_for_partner(partner, key_id)
    except NotFound:
        raise Http404 from None


EVENT_LABELS = {
    "key.issued": "Issued (in batch {batch})", "key.revoked": "Revoked", "key.activated": "Activated",
    "key.voided": "Voided by FiscoBridge", "key.validate.succeeded": "Checked by a customer",
    "key.validate.failed": "A customer's check failed", "key.activate.failed": "A customer's activation failed",
    "key.emailed": "E-mailed to a customer", "key.email_failed": "E-mail to a customer failed",
}


def _history(partner, key: ActivationKey) -> list[dict]:
    """Events on this key, and its batch's issue event, newest first."""
    events = (
        Event.objects.filter(
            Q(target_type=ActivationKey._meta.label_lower, target_id=str(key.pk))
            | Q(target_type=KeyBatch._meta.label_lower, target_id=str(key.batch_id), action="key.issued")
        )
        .select_related("actor", "account").order_by("-at", "-id")[:200]
    )
    rows = []
    for event in events:
        ours = event.actor_id is not None and event.actor.partner_id == partner.pk
        if ours:
            who = event.actor.email
        elif event.actor is not None and event.actor.is_staff:
            who = "FiscoBridge"
        elif event.action == "key.activated" and event.account is not None:
            who = event.account.name  # the activating customer, as in the key's own record
        else:
            who = "A customer" if event.account_id else "—"
        label = EVENT_LABELS.get(event.action, event.action.replace(".", " ").replace("_", " ").capitalize())
        details = event.details or {}
        note = details.get("reason") or (f"to {details['to']}" if details.get("to") else "")
        if event.action.endswith(".failed") and details.get("outcome"):
            note = details["outcome"].replace("_", " ")
        rows.append({"event": event, "label": label.format(batch=key.batch_id), "who": who, "note": note,
                     "ip": event.ip if ours else None})
    return rows


@require_GET
@partner_page
def key_detail(request, partner, key_id: int):
    key = _key_or_404(partner, key_id)
    return render(request, "partners/key_detail.html", {
        "active_nav": "keys", "key": key, "batch": key.batch, "history": _history(partner, key),
        "status": key.display_status,
    })


@require_POST
@partner_page
def revoke(request, partner, key_id: int):
    key = _key_or_404(partner, key_id)
    try:
        revoke_key(key=key, reason=request.POST.get("reason", ""), actor=request.user, ip=client_ip(request))
    except DomainError as error:
        if request.htmx:
            return render(request, "partners/keys/_revoke_result.html", {"error": error_context(error), "key": key})
        messages.error(request, error.message)
        return redirect("partners:key_detail", key_id=key.pk)
    messages.success(request, f"Key {key.hint} revoked: it can no longer be activated.")
    detail = reverse("partners:key_detail", kwargs={"key_id": key.pk})
    return HttpResponseClientRedirect(detail) if request.htmx else redirect(detail)


# --------------------------------------------------------------------------- lookup


@sensitive_post_parameters("key")
@require_http_methods(["GET", "POST"])
@partner_page
def lookup(request, partner):
    """Find one of your keys by its full code. The code comes in a POST body, never a URL."""
    error = None
    if request.method == "POST":
        raw = request.POST.get("key", "")[:200]
        try:
            key = lookup_key_for_partner(partner, raw)
        except KeyFormatError as problem:
            product = "int" if squash(raw).startswith("INT") else "pos"
            error = error_context(InvalidKeyFormat(product=product, problem=problem.problem))
        except NotFound:
            error = {"code": "not_found", "message": "No such key among yours", "hints": [
                "Check the key against the one you issued. Keys of other partners are never shown."]}
        else:
            return redirect("partners:key_detail", key_id=key.pk)
    return render(request, "partners/lookup.html", {"active_nav": "lookup", "error": error})


# --------------------------------------------------------------------------- API tokens


@never_cache  # a new token is shown in this answer
@require_http_methods(["GET", "POST"])
@partner_page
def api_tokens(request, partner):
    return tokens_page(request, template="partners/tokens.html")


@require_POST
@partner_page
def revoke_token(request, partner, token_id: int):
    return revoke_own_token(request, token_id, back_to="partners:api_tokens")
