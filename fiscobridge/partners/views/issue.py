"""Issue keys: the form, its one-time token, and the answer that shows the codes once."""

import secrets
from datetime import timedelta

from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods

from fiscobridge.core import clock
from fiscobridge.core.errors import InvalidInput
from fiscobridge.core.net import client_ip
from fiscobridge.keys.issuance import issue_keys
from fiscobridge.keys.models import ActivationKey, KeyBatch
from fiscobridge.partners.emails import email_key_to_customer
from fiscobridge.partners.forms import IssueForm
from fiscobridge.partners.large_batches import is_large, start_large_issue
from fiscobridge.partners.models import IssueFormNonce
from fiscobridge.web.access import partner_page

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
        return _issue_response(
            request, "partners/issue/_form.html", {"form": IssueForm(), "nonce": _form_nonce(request)}
        )
    if not _use_form_nonce(request, request.POST.get("nonce", "")):
        latest = KeyBatch.objects.filter(partner=partner, created_by=request.user).order_by("-id").first()
        return _issue_response(request, "partners/issue/_resent.html", {"latest": latest})
    form = IssueForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        if is_large(data["quantity"]):
            return _start_large_issue(request, partner, form)
        try:
            issued = issue_keys(**_batch_arguments(request, partner, form))
        except InvalidInput as error:
            _add_form_error(form, error)
        else:
            # issue_keys has committed by now (requests are not wrapped in a transaction), so
            # the e-mail only ever carries a key that exists.
            emailed = None
            if data.get("email") and len(issued.keys) == 1:
                key = ActivationKey.objects.get(pk=issued.keys[0].id)
                emailed = email_key_to_customer(
                    key=key,
                    code=issued.keys[0].code,
                    to=data.get("email"),
                    partner=partner,
                    actor=request.user,
                    ip=client_ip(request),
                )
            return _issue_response(
                request,
                "partners/issue/_issued.html",
                {
                    "batch": issued.batch,
                    "codes": issued.keys,
                    "email": data.get("email"),
                    "emailed": emailed,
                },
            )
    return _issue_response(request, "partners/issue/_form.html", {"form": form, "nonce": _form_nonce(request)})


def _batch_arguments(request, partner, form) -> dict:
    """What the Issue form asks for, as issue_keys and start_large_issue take it."""
    data = form.cleaned_data
    return {
        "partner": partner,
        "actor": request.user,
        "product": data["product"],
        "tier": data["tier"],
        "seats": data["seats"],
        "months": data["months"],
        "quantity": data["quantity"],
        "reference": data["reference"],
        "redeem_by": form.redeem_by_day(),
        "ip": client_ip(request),
    }


def _add_form_error(form, error: InvalidInput) -> None:
    """The service's refusal next to the field it names, or above the form."""
    field = error.details.get("field")
    form.add_error(field if field in form.fields else None, error.message)


def _start_large_issue(request, partner, form):
    """More than KEY_ISSUE_DIRECT_MAX keys: queued for the worker; the answer is the job's progress
    (views/issue_jobs.py), which offers the codes' one download when they are ready."""
    try:
        job = start_large_issue(**_batch_arguments(request, partner, form))
    except InvalidInput as error:
        _add_form_error(form, error)
        return _issue_response(request, "partners/issue/_form.html", {"form": form, "nonce": _form_nonce(request)})
    return _issue_response(request, "partners/issue/_job.html", {"job": job})
