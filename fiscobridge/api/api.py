from csp.decorators import csp_update
from ninja import NinjaAPI

from fiscobridge.accounts.scopes import Scope
from fiscobridge.api.auth import AUTH, BearerToken
from fiscobridge.api.errors import install_error_handlers
from fiscobridge.api.parser import StrictParser
from fiscobridge.api.routers import (
    certificates,
    connections,
    customer_keys,
    partner_keys,
    partner_webhooks,
    subscriptions,
)


class ScopedNinjaAPI(NinjaAPI):
    """The OpenAPI document names each operation's token scopes (docs/api-tokens.md), in its
    security requirement (OpenAPI 3.1 lets a non-OAuth scheme list the roles it needs) and in its
    description, where the docs page shows them. Ninja itself always writes an empty list."""

    def get_openapi_schema(self, **kwargs):
        schema = super().get_openapi_schema(**kwargs)
        accepted = {}
        for _prefix, router in self._routers:
            for path_view in router.path_operations.values():
                for operation in path_view.operations:
                    for bearer in (a for a in operation.auth_callbacks if isinstance(a, BearerToken)):
                        operation_id = operation.operation_id or self.get_openapi_operation_id(operation)
                        accepted[operation_id] = [Scope.ALL.value, *(str(s) for s in bearer.accepted)]
        for methods in schema["paths"].values():
            for operation in methods.values():
                scopes = accepted.get(operation.get("operationId"))
                if scopes:
                    operation["security"] = [{"BearerToken": scopes}, {"SessionAuth": []}]
                    named = ", ".join(f"`{s}`" for s in scopes)
                    operation["description"] = f"{operation.get('description', '')}\n\nToken scopes: {named}.".strip()
        return schema


api = ScopedNinjaAPI(
    title="FiscoBridge Licensing API",
    version="1",
    description=(
        "Activation keys, subscriptions and seats. Authenticate with `Authorization: Bearer <token>` "
        "(create one with `fiscobridge create-token`) or the portal session. Every error body is "
        '`{"error": {"code", "message", "details"}}`. A token may be limited to scopes: each operation names '
        "the ones it accepts; without them it answers 403 `insufficient_scope`."
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
api.add_router("/partner/webhooks", partner_webhooks.router)
api.add_router("/integrations/connections", connections.router)
api.add_router("/pos/certificates", certificates.router)
