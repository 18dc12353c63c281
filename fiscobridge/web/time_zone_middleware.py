"""Pages in the requester's time zone: Django's active zone is the tenant's for the request, so
`{{ value|date }}` and `{{ value|moment }}` show local time without each view passing a zone."""

from django.utils import timezone

from fiscobridge.core.localtime import zone

# The API speaks UTC only (SPEC 8) and its hot paths count statements (tests/test_hot_paths.py):
# nothing here reads the user there. Health checks and static files have no tenant.
SKIPPED_PREFIXES = ("/api/", "/static/", "/healthz", "/readyz", "/metrics", "/.well-known/")


def tenant_time_zone(user) -> str | None:
    """The zone of the user's customer account or partner; None for staff and anonymous users
    (they see UTC). Reading the tenant here costs nothing extra on a portal page: the page's
    access decorator reads the same related row, and Django caches it on the user."""
    if not getattr(user, "is_authenticated", False):
        return None
    tenant = user.account if user.account_id is not None else user.partner if user.partner_id is not None else None
    return tenant.time_zone if tenant is not None else None


class TenantTimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(SKIPPED_PREFIXES):
            return self.get_response(request)
        name = tenant_time_zone(request.user)
        if name is None:
            timezone.deactivate()
            return self.get_response(request)
        timezone.activate(zone(name))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
