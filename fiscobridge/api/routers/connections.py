from typing import Literal

from ninja import Router
from ninja.responses import Status

from fiscobridge.accounts.scopes import Scope
from fiscobridge.api.answers import json_answer
from fiscobridge.api.auth import customer_account, scoped
from fiscobridge.api.presenters import connection_dict
from fiscobridge.api.schemas import (
    ConnectionIn,
    ConnectionListOut,
    ConnectionOut,
    ErrorOut,
    InvoiceUsageIn,
)
from fiscobridge.core.net import client_ip
from fiscobridge.integrations.queries import (
    connections_for_account,
    get_connection_for_account,
    usage_by_tier,
    usage_of,
)
from fiscobridge.integrations.services import (
    create_connection,
    record_invoice_usage,
    remove_connection,
)

router = Router(tags=["Integrations connections"])
ERRORS = {401: ErrorOut, 403: ErrorOut, 422: ErrorOut}
ON_ONE = {404: ErrorOut, 409: ErrorOut, **ERRORS}


@router.get("", auth=scoped(Scope.INTEGRATIONS_CONNECTIONS, Scope.READ), response={200: ConnectionListOut, **ERRORS})
def list_connections(request, status: Literal["active", "removed"] | None = None):
    """Your connections in the order they were created, with this month's invoice usage."""
    account = customer_account(request)
    usage = usage_by_tier(account)
    return {"items": [connection_dict(c, usage=usage[c.tier]) for c in connections_for_account(account, status=status)]}


@router.post("", auth=scoped(Scope.INTEGRATIONS_CONNECTIONS), response={201: ConnectionOut, 409: ErrorOut, **ERRORS})
def create(request, payload: ConnectionIn):
    """Create a connection on a free seat of its tier (409 `seat_limit_reached` otherwise).
    Tier `trial` is the free connection of an account without a paid Integrations subscription."""
    connection = create_connection(
        account=customer_account(request),
        actor=request.user,
        type=payload.type,
        tier=payload.tier,
        name=payload.name,
        ip=client_ip(request),
    )
    return Status(201, connection_dict(connection, usage=usage_of(connection)))


@router.post("/{uid}/remove", auth=scoped(Scope.INTEGRATIONS_CONNECTIONS), response={200: ConnectionOut, **ON_ONE})
def remove(request, uid: str):
    """Stop a connection. Its seat is free at once; this cannot be undone."""
    connection = get_connection_for_account(customer_account(request), uid)
    connection = remove_connection(connection=connection, actor=request.user, ip=client_ip(request))
    return connection_dict(connection, usage=usage_of(connection))


@router.post(
    "/{uid}/usage", auth=scoped(Scope.INTEGRATIONS_USAGE), response={200: ConnectionOut, 429: ErrorOut, **ON_ONE}
)
def report_usage(request, uid: str, payload: InvoiceUsageIn):
    """Count invoices a sync run sent. The monthly count belongs to the account and the connection's
    tier (a re-created connection continues it). Past the tier's monthly limit the whole report is
    refused with 429 `invoice_limit_reached` and `Retry-After` (seconds until the account's next
    local month) and nothing is counted; a connection whose tier (or the trial) is not available to
    the account gets 403 `no_active_subscription`."""
    connection = get_connection_for_account(customer_account(request), uid)
    usage = record_invoice_usage(connection=connection, invoices=payload.invoices, ip=client_ip(request))
    return json_answer(connection_dict(connection, usage=usage))
