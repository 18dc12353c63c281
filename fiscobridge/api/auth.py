"""Who is calling: a bearer API token (within its scopes), or the browser session (with CSRF)."""

from django.http import HttpRequest
from ninja.security import HttpBearer, django_auth

from fiscobridge.accounts.errors import InsufficientScope, NotACustomer, NotAPartner
from fiscobridge.accounts.scopes import Scope, grants
from fiscobridge.accounts.services import authenticate_api_token
from fiscobridge.keys.limits import Requester
from fiscobridge.web.requester import requester_from_request


class BearerToken(HttpBearer):
    """A bearer token that holds one of `accepted` (or `all`). The scope is checked here, with
    authentication and before the body is read, so a token without it hears 403
    `insufficient_scope` whatever it sent. The scopes come with the token's one statement."""

    def __init__(self, *accepted: Scope):
        super().__init__()
        self.accepted = list(accepted)

    def authenticate(self, request: HttpRequest, token: str):
        api_token = authenticate_api_token(token)
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


def scoped(*accepted: Scope) -> list:
    """The `auth` of a route that tokens holding any of `accepted` may call (the first is the one
    named in `insufficient_scope`). The browser session keeps every right: its user signed in."""
    return [BearerToken(*accepted), django_auth]


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
