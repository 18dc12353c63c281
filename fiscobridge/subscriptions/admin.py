from django.contrib import admin

from fiscobridge.core.admin import ReadOnlyAdmin
from fiscobridge.subscriptions.models import Subscription


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = ["id", "account", "product", "tier", "seats", "source", "key_hint", "started_at", "expires_at", "status"]
    list_filter = ["product", "tier", "source"]
    search_fields = ["account__name", "key_hint"]
    list_select_related = ["account"]
