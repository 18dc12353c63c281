"""Who is redeeming, read off an HTTP request (the API and the portal pages share this)."""

from django.http import HttpRequest

from fiscobridge.core.crypto import keyed_hash
from fiscobridge.core.net import client_ip
from fiscobridge.keys.limits import Requester


def session_scope(request: HttpRequest) -> str:
    """The failed-attempt "session": the API token, or a keyed hash of the browser session key."""
    api_token = getattr(request, "api_token", None)
    if api_token is not None:
        return f"token:{api_token.pk}"
    if request.session.session_key is None:
        request.session.save()
    return "session:" + keyed_hash("session", request.session.session_key)[:48]


def requester_from_request(request: HttpRequest, account) -> Requester:
    return Requester(account=account, user=request.user, session_scope=session_scope(request), ip=client_ip(request))
