from django.contrib import admin

from fiscobridge.subscriptions.models import Subscription


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "product", "tier", "seats", "source", "key_hint", "started_at", "expires_at", "status"]
    list_filter = ["product", "tier", "source"]
    search_fields = ["account__name", "key_hint"]
    list_select_related = ["account"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
