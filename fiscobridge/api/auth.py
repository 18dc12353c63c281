"""Who is calling: a bearer API token, or the browser session (with CSRF)."""

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from fiscobridge.accounts.errors import NotACustomer, NotAPartner
from fiscobridge.keys.limits import Requester
from fiscobridge.web.bearer import bearer_token
from fiscobridge.web.requester import requester_from_request


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        api_token = bearer_token(request)  # the header ninja read `token` from, looked up once
        if api_token is None:
            return None
        request.user = api_token.user
        request.api_token = api_token
        return api_token.user


class BrowserSession(SessionAuth):
    """The signed-in browser, CSRF checked. The CSRF check runs only for a signed-in user, so an
    anonymous write is answered 401 `unauthenticated` (sign in), not a CSRF 403."""

    def __call__(self, request: HttpRequest):
        if not request.user.is_authenticated:
            return None
        return super().__call__(request)


AUTH = [BearerToken(), BrowserSession()]


def customer_account(request: HttpRequest):
    account = getattr(request.user, "account", None)
    if account is None:
        raise NotACustomer()
    return account


def partner_of(request: HttpRequest):
    partner = getattr(request.user, "partner", None)
    if partner is None:
        raise NotAPartner()
    return partner


def requester_for(request: HttpRequest) -> Requester:
    return requester_from_request(request, customer_account(request))
