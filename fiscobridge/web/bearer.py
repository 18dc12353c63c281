"""The request's API token, looked up once per request however many layers ask (the request
guard, idempotency, the API's authentication)."""

from django.http import HttpRequest

from fiscobridge.accounts.models import ApiToken
from fiscobridge.accounts.services import authenticate_api_token

_UNSET = object()


def bearer_token(request: HttpRequest) -> ApiToken | None:
    """The active token of `Authorization: Bearer …`, or None (no header, unknown or revoked)."""
    cached = getattr(request, "_fiscobridge_bearer", _UNSET)
    if cached is not _UNSET:
        return cached
    scheme, _, credential = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    credential = credential.strip()
    token = authenticate_api_token(credential) if scheme.lower() == "bearer" and credential else None
    request._fiscobridge_bearer = token
    return token
