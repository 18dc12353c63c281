from django.contrib import admin

from fiscobridge.billing.models import CheckoutSession, StripeCustomer, StripeEvent
from fiscobridge.core.admin import ReadOnlyAdmin


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    """Every webhook event as received, with its handling status and error (for support)."""

    list_display = ["received_at", "event_id", "type", "account", "status", "attempts", "handled_at"]
    list_filter = ["status", "type"]
    search_fields = ["event_id", "type", "account__name"]
    list_select_related = ["account"]
    show_full_result_count = False


@admin.register(StripeCustomer)
class StripeCustomerAdmin(ReadOnlyAdmin):
    list_display = ["account", "customer_id", "created_at"]
    search_fields = ["customer_id", "account__name"]
    list_select_related = ["account"]


@admin.register(CheckoutSession)
class CheckoutSessionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "product", "tier", "seats", "interval", "completed_at"]
    list_filter = ["product", "interval"]
    search_fields = ["session_id", "account__name", "stripe_subscription_id"]
    list_select_related = ["account"]
