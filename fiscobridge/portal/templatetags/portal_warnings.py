"""`{% stopping_soon %}`: the Client Portal's banners about subscriptions and certificates that stop
soon (portal/warnings.py), on every page of the portal, for the signed-in customer's account."""

from django import template

from fiscobridge.portal.warnings import account_endings

register = template.Library()


@register.inclusion_tag("portal/_ending_soon.html", takes_context=True)
def stopping_soon(context):
    request = context.get("request")
    account = getattr(getattr(request, "user", None), "account", None)
    return {"endings": account_endings(account) if account is not None else []}
