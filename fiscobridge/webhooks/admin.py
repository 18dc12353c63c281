"""Staff view of partners' webhook endpoints and deliveries (read-only; the secret never shown)."""

from django.contrib import admin

from fiscobridge.core.admin import ReadOnlyAdmin
from fiscobridge.webhooks.models import Delivery, Endpoint


@admin.register(Endpoint)
class EndpointAdmin(ReadOnlyAdmin):
    list_display = ["url", "partner", "events", "enabled", "status", "failing_since", "created_at"]
    list_filter = ["status", "enabled"]
    search_fields = ["url", "partner__name", "description"]
    list_select_related = ["partner"]
    fields = ["partner", "url", "events", "description", "enabled", "status", "failing_since", "created_at"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "event_id", "event_type", "endpoint", "status", "attempts", "response_code"]
    list_filter = ["status"]
    search_fields = ["event__id", "endpoint__url", "endpoint__partner__name"]
    list_select_related = ["event", "endpoint"]
    date_hierarchy = "created_at"
    fields = [
        "event",
        "endpoint",
        "status",
        "attempts",
        "failures",
        "next_attempt_at",
        "last_attempt_at",
        "response_code",
        "last_error",
        "response_body",
        "created_at",
    ]

    @admin.display(description="event")
    def event_type(self, delivery):
        return delivery.event.type
