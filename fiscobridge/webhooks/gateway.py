"""The one module that talks to partners' webhook receivers (HTTP POST), and the target rules.

Standard library only (http.client): a redirect is an answer like any other (never followed: it
could lead to an internal address), the connection goes to the address that was checked (no
second DNS lookup that a rebinding name could answer differently), and TLS still verifies the
certificate against the URL's host name.
"""

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from fiscobridge.core.errors import InvalidInput

TIMEOUT_SECONDS = 10
BODY_KEPT = 1024  # bytes of the receiver's answer kept for the partner to debug with
USER_AGENT = "FiscoBridge-Webhooks/1"


class TargetRefused(Exception):
    """The endpoint's address may not be called (private, loopback, link-local, not HTTPS…)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: str


def _allow_private() -> bool:
    return bool(settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS)


def _allow_http() -> bool:
    return settings.ENVIRONMENT == "development"


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for private, loopback, link-local (169.254.x: cloud metadata), shared
    # (100.64/10), documentation, reserved and unspecified ranges.
    return ip.is_global and not ip.is_multicast


def check_url(url: str) -> str:
    """The rules an endpoint URL must meet when it is saved (the address is checked again at each
    delivery: a name may resolve elsewhere later). Returns the URL; raises InvalidInput."""
    url = (url or "").strip() if isinstance(url, str) else ""
    if len(url) > 2000:
        raise InvalidInput.for_field("url", "The URL is too long (at most 2000 characters)")
    # ASCII without spaces or control characters: what an HTTP request line can carry (an
    # international domain name is written in its xn-- form).
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        raise InvalidInput.for_field("url", "Enter the URL in ASCII, without spaces (xn-- form for a non-ASCII name)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput.for_field("url", "Enter a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput.for_field("url", "Enter a full URL starting with https://")
    if parts.scheme == "http" and not _allow_http():
        raise InvalidInput.for_field("url", "Webhook URLs must use HTTPS")
    if parts.username or parts.password:
        raise InvalidInput.for_field("url", "Put no user name or password in the URL; verify the signature instead")
    if port == 0:
        raise InvalidInput.for_field("url", "Enter a valid URL")
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        literal = None
    local_name = parts.hostname == "localhost" or parts.hostname.endswith(".localhost")
    private_literal = literal is not None and not _public(str(literal))
    if (local_name or private_literal) and not _allow_private():
        raise InvalidInput.for_field("url", "Private, loopback and link-local addresses are not allowed")
    return url


def _resolve(host: str, port: int) -> str:
    """The address to connect to: every address the name has must be public (unless allowed),
    so that a name with one public and one internal address cannot be used either."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise TargetRefused(f"cannot resolve {host}: {error.strerror}") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise TargetRefused(f"{host} has no address")
    if not _allow_private():
        refused = [a for a in addresses if not _public(a)]
        if refused:
            raise TargetRefused(f"{host} resolves to a private, loopback or link-local address ({refused[0]})")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, **kwargs)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, context=ssl.create_default_context(), **kwargs)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # SNI and certificate verification against the URL's host name, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, *, body: str, headers: dict[str, str]) -> Answer:
    """POST `body` to `url`: one attempt, TIMEOUT_SECONDS per network operation, no redirects.
    Raises TargetRefused, OSError (connection refused, timeout, TLS…) or http.client.HTTPException
    (an answer that is not HTTP)."""
    check_url_for_delivery(url)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _resolve(parts.hostname, port)
    kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = kind(parts.hostname, port, address, timeout=TIMEOUT_SECONDS)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.request(
            "POST",
            path,
            body=body.encode(),
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
        )
        response = connection.getresponse()
        kept = response.read(BODY_KEPT)
        return Answer(status=response.status, body=kept.decode("utf-8", errors="replace"))
    finally:
        connection.close()


def check_url_for_delivery(url: str) -> None:
    try:
        check_url(url)
    except InvalidInput as error:
        raise TargetRefused(error.message) from None
