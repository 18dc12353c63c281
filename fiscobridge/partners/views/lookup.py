"""Find one of the partner's keys by its full code."""

from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from fiscobridge.core.errors import NotFound
from fiscobridge.keys.codes import KeyFormatError, squash
from fiscobridge.keys.errors import InvalidKeyFormat
from fiscobridge.keys.queries import lookup_key_for_partner
from fiscobridge.web.access import partner_page
from fiscobridge.web.errors import error_context


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
            error = {
                "code": "not_found",
                "message": "No such key among yours",
                "hints": ["Check the key against the one you issued. Keys of other partners are never shown."],
            }
        else:
            return redirect("partners:key_detail", key_id=key.pk)
    return render(request, "partners/lookup.html", {"active_nav": "lookup", "error": error})
