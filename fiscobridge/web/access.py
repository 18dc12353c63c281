"""Who may see a page of either portal: signed-in users of one kind of tenant."""

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import render


def tenant_page(tenant_attr: str, forbidden_template: str):
    """A view decorator for the pages of one tenant kind (`account` or `partner`).

    Anonymous → the login page (htmx: a client-side redirect); a user of another kind → a 403
    page saying whose portal this is. The wrapped view receives the tenant as its second
    argument; every query in it starts from that tenant, so another tenant's object is simply
    not found (404, never 403).
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                if getattr(request, "htmx", False):
                    return HttpResponse(status=204, headers={"HX-Redirect": settings.LOGIN_URL})
                return redirect_to_login(request.get_full_path())
            tenant = getattr(request.user, tenant_attr)
            if tenant is None:
                return render(request, forbidden_template, status=403)
            return view(request, tenant, *args, **kwargs)

        return wrapper

    return decorator


customer_page = tenant_page("account", "portal/not_customer.html")
partner_page = tenant_page("partner", "partners/not_partner.html")
