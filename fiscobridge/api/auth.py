"""Who is calling: a bearer API token (within its scopes), or the browser session (with CSRF)."""

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from fiscobridge.accounts.errors import InsufficientScope, NotACustomer, NotAPartner
from fiscobridge.accounts.scopes import Scope, grants
from fiscobridge.keys.limits import Requester
from fiscobridge.web.bearer import bearer_token
from fiscobridge.web.requester import requester_from_request


class BearerToken(HttpBearer):
    """A bearer token that holds one of `accepted` (or `all`). The scope is checked here, with
    authentication and before the body is read, so a token without it hears 403
    `insufficient_scope` whatever it sent. The scopes come with the token's one statement."""

    def __init__(self, *accepted: Scope):
        super().__init__()
        self.accepted = list(accepted)

    def authenticate(self, request: HttpRequest, token: str):
        api_token = bearer_token(request)  # the header ninja read `token` from, looked up once
        if api_token is None:
            return None
        request.user = api_token.user
        request.api_token = api_token
        if not grants(api_token.scope_set, self.accepted):
            raise InsufficientScope(
                required=str(self.accepted[0]) if self.accepted else Scope.ALL.value,
                accepted=[Scope.ALL.value, *(str(s) for s in self.accepted)],
            )
        return api_token.user


class BrowserSession(SessionAuth):
    """The signed-in browser, CSRF checked. The CSRF check runs only for a signed-in user, so an
    anonymous write is answered 401 `unauthenticated` (sign in), not a CSRF 403."""

    def __call__(self, request: HttpRequest):
        if not request.user.is_authenticated:
            return None
        return super().__call__(request)


def scoped(*accepted: Scope) -> list:
    """The `auth` of a route that tokens holding any of `accepted` may call (the first is the one
    named in `insufficient_scope`). The browser session keeps every right: its user signed in."""
    return [BearerToken(*accepted), BrowserSession()]


# A route that names no scope is open to full-access tokens only: forgetting `auth=scoped(…)`
# can never widen what a limited token reaches (tests/test_api_scopes.py lists every route).
AUTH = scoped()


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
