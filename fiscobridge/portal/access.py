"""Who may see a Client Portal page: signed-in users of a customer account."""

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import render


def customer_page(view):
    """Anonymous → the login page (htmx: a client-side redirect); non-customers → 403 page.

    The wrapped view receives the account as its second argument; every query in it starts
    from that account, so another account's object is simply not found (404).
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            if getattr(request, "htmx", False):
                return HttpResponse(status=204, headers={"HX-Redirect": settings.LOGIN_URL})
            return redirect_to_login(request.get_full_path())
        account = request.user.account
        if account is None:
            return render(request, "portal/not_customer.html", status=403)
        return view(request, account, *args, **kwargs)

    return wrapper
