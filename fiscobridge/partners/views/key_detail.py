"""One key: its detail page with history, and revoking it."""

from django.contrib import messages
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from fiscobridge.audit.actions import action_label
from fiscobridge.audit.models import Event
from fiscobridge.core.errors import DomainError, NotFound
from fiscobridge.core.net import client_ip
from fiscobridge.keys.models import ActivationKey, KeyBatch
from fiscobridge.keys.queries import get_key_for_partner
from fiscobridge.keys.services import revoke_key
from fiscobridge.web.access import partner_page
from fiscobridge.web.errors import error_context


def _key_or_404(partner, key_id: int) -> ActivationKey:
    try:
        return get_key_for_partner(partner, key_id)
    except NotFound:
        raise Http404 from None


def _history(partner, key: ActivationKey) -> list[dict]:
    """Events on this key, and its batch's issue event, newest first."""
    events = (
        Event.objects.filter(
            Q(target_type=ActivationKey._meta.label_lower, target_id=str(key.pk))
            | Q(target_type=KeyBatch._meta.label_lower, target_id=str(key.batch_id), action="key.issued")
        )
        .select_related("actor", "account")
        .order_by("-at", "-id")[:200]
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
        details = event.details or {}
        note = details.get("reason") or (f"to {details['to']}" if details.get("to") else "")
        if event.action == "key.issued":
            note = f"in batch {key.batch_id}"
        if event.action.endswith("_failed") and details.get("outcome"):
            note = details["outcome"].replace("_", " ")
        rows.append(
            {
                "event": event,
                "label": action_label(event.action),
                "who": who,
                "note": note,
                "ip": event.ip if ours else None,
            }
        )
    return rows


@require_GET
@partner_page
def key_detail(request, partner, key_id: int):
    key = _key_or_404(partner, key_id)
    return render(
        request,
        "partners/key_detail.html",
        {
            "active_nav": "keys",
            "key": key,
            "batch": key.batch,
            "history": _history(partner, key),
            "status": key.display_status,
        },
    )


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
