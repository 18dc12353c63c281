"""The partner's webhook endpoints and their deliveries (docs/webhooks.md)."""

import json
from datetime import datetime

from ninja import Field, Router, Schema
from ninja.responses import Status

from fiscobridge.accounts.scopes import Scope
from fiscobridge.api.auth import partner_of, scoped
from fiscobridge.api.schemas import ErrorOut
from fiscobridge.core.net import client_ip
from fiscobridge.webhooks.models import Delivery, Endpoint, EventType
from fiscobridge.webhooks.queries import (
    deliveries_of,
    endpoints_of,
    get_delivery_for_partner,
    get_endpoint_for_partner,
)
from fiscobridge.webhooks.services import create_endpoint, delete_endpoint, resend_delivery, update_endpoint

router = Router(tags=["Webhooks (partner)"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
EVENTS_HELP = "Any of: " + ", ".join(EventType.values)


class EndpointIn(Schema):
    url: str = Field(..., max_length=2000, description="HTTPS URL that receives the POSTs")
    events: list[str] = Field(..., min_length=1, max_length=10, description=EVENTS_HELP)
    description: str = Field("", max_length=200)


class EndpointChangeIn(Schema):
    url: str | None = Field(None, max_length=2000)
    events: list[str] | None = Field(None, min_length=1, max_length=10, description=EVENTS_HELP)
    description: str | None = Field(None, max_length=200)
    enabled: bool | None = None


class EndpointOut(Schema):
    id: int
    url: str
    events: list[str]
    description: str
    enabled: bool
    status: str = Field(..., description="ok | failing (a delivery exhausted its retries)")
    failing_since: datetime | None
    created_at: datetime


class CreatedEndpointOut(EndpointOut):
    secret: str = Field(..., description="`whsec_…`: verify signatures with it. Shown only in this answer")


class EndpointListOut(Schema):
    items: list[EndpointOut]


class DeliveryOut(Schema):
    id: int
    event_id: str = Field(..., description="The `webhook-id` header: the same on every retry and resend")
    event_type: str
    event_created_at: datetime
    status: str = Field(..., description="pending | succeeded | failed")
    attempts: int
    response_code: int | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    last_error: str
    response_body: str = Field(..., description="The first 1 KiB of the receiver's last answer")
    payload: dict


class DeliveryListOut(Schema):
    items: list[DeliveryOut]


def endpoint_dict(endpoint: Endpoint) -> dict:
    return {
        "id": endpoint.pk,
        "url": endpoint.url,
        "events": endpoint.event_types,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "status": endpoint.status,
        "failing_since": endpoint.failing_since,
        "created_at": endpoint.created_at,
    }


def delivery_dict(delivery: Delivery) -> dict:
    return {
        "id": delivery.pk,
        "event_id": delivery.event_id,
        "event_type": delivery.event.type,
        "event_created_at": delivery.event.created_at,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "response_code": delivery.response_code,
        "last_attempt_at": delivery.last_attempt_at,
        "next_attempt_at": delivery.next_attempt_at,
        "last_error": delivery.last_error,
        "response_body": delivery.response_body,
        "payload": json.loads(delivery.event.body),
    }


READ = scoped(Scope.PARTNER_KEYS, Scope.READ)
WRITE = scoped(Scope.PARTNER_KEYS)


@router.get("", auth=READ, response={200: EndpointListOut, **ERRORS})
def list_endpoints(request):
    """Your webhook endpoints."""
    return {"items": [endpoint_dict(e) for e in endpoints_of(partner_of(request))]}


@router.post("", auth=WRITE, response={201: CreatedEndpointOut, **ERRORS})
def create(request, payload: EndpointIn):
    """Add an endpoint. The answer carries its signing secret, the only time it is shown."""
    created = create_endpoint(
        partner=partner_of(request),
        actor=request.user,
        url=payload.url,
        events=payload.events,
        description=payload.description,
        ip=client_ip(request),
    )
    return Status(201, {**endpoint_dict(created.endpoint), "secret": created.secret})


@router.get("/{int:endpoint_id}", auth=READ, response={200: EndpointOut, **ERRORS})
def get(request, endpoint_id: int):
    return endpoint_dict(get_endpoint_for_partner(partner_of(request), endpoint_id))


@router.patch("/{int:endpoint_id}", auth=WRITE, response={200: EndpointOut, **ERRORS})
def change(request, endpoint_id: int, payload: EndpointChangeIn):
    """Change the URL, events, description or enabled; what is left out stays."""
    endpoint = get_endpoint_for_partner(partner_of(request), endpoint_id)
    changed = update_endpoint(
        endpoint=endpoint,
        actor=request.user,
        url=payload.url,
        events=payload.events,
        description=payload.description,
        enabled=payload.enabled,
        ip=client_ip(request),
    )
    return endpoint_dict(changed)


@router.delete("/{int:endpoint_id}", auth=WRITE, response={204: None, **ERRORS})
def delete(request, endpoint_id: int):
    """Delete the endpoint and its delivery log."""
    endpoint = get_endpoint_for_partner(partner_of(request), endpoint_id)
    delete_endpoint(endpoint=endpoint, actor=request.user, ip=client_ip(request))
    return Status(204, None)


@router.get("/{int:endpoint_id}/deliveries", auth=READ, response={200: DeliveryListOut, **ERRORS})
def deliveries(request, endpoint_id: int):
    """The endpoint's latest 50 deliveries, newest first."""
    endpoint = get_endpoint_for_partner(partner_of(request), endpoint_id)
    return {"items": [delivery_dict(d) for d in deliveries_of(endpoint)]}


@router.post("/deliveries/{int:delivery_id}/resend", auth=WRITE, response={202: DeliveryOut, **ERRORS})
def resend(request, delivery_id: int):
    """Send the delivery's event again now (same event id), with a fresh retry schedule."""
    delivery = get_delivery_for_partner(partner_of(request), delivery_id)
    return Status(202, delivery_dict(resend_delivery(delivery=delivery, actor=request.user, ip=client_ip(request))))
