"""Who may see which endpoint or delivery: a partner sees only its own; anything else is not found."""

from fiscobridge.core.errors import NotFound
from fiscobridge.core.ids import is_storable_id
from fiscobridge.webhooks.models import Delivery, Endpoint


def endpoints_of(partner):
    return Endpoint.objects.for_partner(partner).order_by("created_at", "id")


def get_endpoint_for_partner(partner, endpoint_id) -> Endpoint:
    endpoint = endpoints_of(partner).filter(pk=endpoint_id).first() if is_storable_id(endpoint_id) else None
    if endpoint is None:
        raise NotFound()
    return endpoint


def deliveries_of(endpoint, *, limit: int = 50):
    return endpoint.deliveries.select_related("event").order_by("-created_at", "-id")[:limit]


def get_delivery_for_partner(partner, delivery_id) -> Delivery:
    found = None
    if is_storable_id(delivery_id):
        found = Delivery.objects.select_related("event", "endpoint").filter(pk=delivery_id, endpoint__partner=partner)
        found = found.first()
    if found is None:
        raise NotFound()
    return found
