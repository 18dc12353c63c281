"""`GET /.well-known/jwks.json`: the public keys of the offline leases (SPEC 9.1), for anyone.

Outside /api/v1 because devices and JWT libraries look for it at this well-known path; public
keys need no authentication.
"""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from fiscobridge.leases.signing_keys import published_jwks


@require_safe
def jwks_view(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(published_jwks())
    # Revalidated on every fetch: a cache that kept an old set would hide a new key from a device
    # right after a rotation, and the set is small.
    response["Cache-Control"] = "no-cache"
    return response
