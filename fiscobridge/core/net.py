"""The client's IP address, trusting X-Forwarded-For only behind configured proxies."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    proxies = settings.FISCOBRIDGE_TRUSTED_PROXY_COUNT
    remote = request.META.get("REMOTE_ADDR", "") or "0.0.0.0"
    if proxies <= 0:
        return remote
    hops = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    # The right-most `proxies` entries were appended by our own proxies; the one before them
    # is the client as our outermost proxy saw it. Anything further left is client-supplied.
    if len(hops) >= proxies and _is_ip(hops[-proxies]):
        return hops[-proxies]
    return remote


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
