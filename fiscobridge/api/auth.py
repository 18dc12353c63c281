"""Who is calling: a bearer API token, or the browser session (with CSRF)."""

from django.http import HttpRequest
from ninja.security import HttpBearer, django_auth

from fiscobridge.accounts.services import authenticate_api_token
from fiscobridge.core.crypto import keyed_hash
from fiscobridge.core.errors import PermissionDenied
from fiscobridge.core.net import client_ip
from fiscobridge.keys.limits import Requester


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        api_token = authenticate_api_token(token)
        if api_token is None:
            return None
        request.user = api_token.user
        request.api_token = api_token
        return api_token.user


AUTH = [BearerToken(), django_auth]


def session_scope(request: HttpRequest) -> str:
    """The failed-attempt "session": the API token, or a hash of the browser session key."""
    api_token = getattr(request, "api_token", None)
    if api_token is not None:
        return f"token:{api_token.pk}"
    if request.session.session_key is None:
        request.session.save()
    return "session:" + keyed_hash("session", request.session.session_key)[:48]


class NotACustomer(PermissionDenied):
    code = "forbidden"
    message = "This action is for customer accounts"


class NotAPartner(PermissionDenied):
    code = "forbidden"
    message = "This action is for partners"


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
    return Requester(
        account=customer_account(request), user=request.user, session_scope=session_scope(request),
        ip=client_ip(request),
    )
