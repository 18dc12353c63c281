"""Who may see a Partner Portal page: signed-in users of a partner (reseller)."""

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import render


def partner_page(view):
    """Anonymous → the login page (htmx: a client-side redirect); anyone else who is not a
    partner user (customers, staff) → a 403 page.

    The wrapped view receives the partner as its second argument; every query in it starts
    from that partner, so another partner's key is simply not found (404, never 403).
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            if getattr(request, "htmx", False):
                return HttpResponse(status=204, headers={"HX-Redirect": settings.LOGIN_URL})
            return redirect_to_login(request.get_full_path())
        partner = request.user.partner
        if partner is None:
            return render(request, "partners/not_partner.html", status=403)
        return view(request, partner, *args, **kwargs)

    return wrapper
