from csp.decorators import csp_update
from ninja import NinjaAPI

from fiscobridge.api.auth import AUTH
from fiscobridge.api.errors import install_error_handlers
from fiscobridge.api.parser import StrictParser
from fiscobridge.api.routers import (
    certificates,
    connections,
    customer_keys,
    partner_keys,
    subscriptions,
)

api = NinjaAPI(
    title="FiscoBridge Licensing API",
    version="1",
    description=(
        "Activation keys, subscriptions and seats. Authenticate with `Authorization: Bearer <token>` "
        "(create one with `fiscobridge create-token`) or the portal session. Every error body is "
        '`{"error": {"code", "message", "details"}}`.'
    ),
    auth=AUTH,
    parser=StrictParser(),
    urls_namespace="api",
    # ninja's Swagger page loads its script and settings from files (no inline script); only
    # Swagger UI's stylesheet draws its icons as data: images.
    docs_decorator=csp_update({"img-src": ["'self'", "data:"]}),
)
install_error_handlers(api)
api.add_router("/keys", customer_keys.router)
api.add_router("/subscriptions", subscriptions.router)
api.add_router("/partner/keys", partner_keys.router)
api.add_router("/integrations/connections", connections.router)
api.add_router("/pos/certificates", certificates.router)
