"""Production guard rails (issue 11.3): Django system checks that stop a production start-up with
one clear line per problem, instead of e-mail links to localhost or a redirect loop behind a
proxy. They run with every management command (`migrate`, `check`, `fiscobridge serve` runs
`check` first) and only when FISCOBRIDGE_ENV=production; `check --deploy` lists them too.
Registered by the accounts app (apps.py). Each id is explained in docs/operations.md."""

from email.utils import parseaddr
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register

LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1", "0.0.0.0", "testserver"}


def _local(host: str) -> bool:
    host = (host or "").lower()
    return host in LOCAL_HOSTS or host.endswith(".localhost") or host.endswith(".local") or host == ""


@register("fiscobridge")
def production_settings(app_configs=None, **kwargs) -> list[Error]:
    if not settings.PRODUCTION:
        return []
    errors = []
    explicit = settings.EXPLICIT_SETTINGS
    base = urlsplit(settings.PUBLIC_BASE_URL)
    if "PUBLIC_BASE_URL" not in explicit or base.scheme != "https" or _local(base.hostname or ""):
        errors.append(
            Error(
                f"PUBLIC_BASE_URL must be the portal's public https address (now {settings.PUBLIC_BASE_URL!r}): "
                "e-mail links and Stripe return URLs use it",
                id="fiscobridge.E001",
            )
        )
    sender = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    domain = sender.rpartition("@")[2]
    if "DEFAULT_FROM_EMAIL" not in explicit or "@" not in sender or _local(domain) or domain.endswith(".example"):
        errors.append(
            Error(
                f"DEFAULT_FROM_EMAIL must be an address of your own domain (now {settings.DEFAULT_FROM_EMAIL!r})",
                id="fiscobridge.E002",
            )
        )
    hosts = settings.ALLOWED_HOSTS
    if not hosts or "*" in hosts or all(_local(host.lstrip(".")) for host in hosts):
        errors.append(
            Error(
                f"ALLOWED_HOSTS must name the public host(s), without '*' (now {hosts!r})",
                id="fiscobridge.E003",
            )
        )
    proxies = settings.FISCOBRIDGE_TRUSTED_PROXY_COUNT
    if "FISCOBRIDGE_TRUSTED_PROXY_COUNT" not in explicit or proxies < 0:
        errors.append(
            Error(
                "FISCOBRIDGE_TRUSTED_PROXY_COUNT must be set: 0 when clients connect directly, else the number "
                "of reverse proxies in front (client IPs for limits and lockouts, HTTPS behind TLS termination)",
                id="fiscobridge.E004",
            )
        )
    # Only between two values that are each sane: one problem, one line.
    if not errors and not _host_allowed(base.hostname or "", hosts):
        errors.append(
            Error(
                f"ALLOWED_HOSTS {hosts!r} does not include PUBLIC_BASE_URL's host {base.hostname!r}",
                id="fiscobridge.E005",
            )
        )
    return errors


def _host_allowed(host: str, allowed: list[str]) -> bool:
    host = host.lower()
    return any(
        host == pattern.lower() or (pattern.startswith(".") and (host.endswith(pattern.lower()) or host == pattern[1:]))
        for pattern in allowed
    )
