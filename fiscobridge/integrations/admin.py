"""Staff view of Integrations connections; removal goes through the service (frees the seat,
audited)."""

from django.contrib import admin

from fiscobridge.core.admin import ReadOnlyAdmin, confirmed_action
from fiscobridge.integrations.models import Connection, InvoiceUsage
from fiscobridge.integrations.services import remove_connection


@admin.register(Connection)
class ConnectionAdmin(ReadOnlyAdmin):
    list_display = ["uid", "account", "name", "type", "tier", "status", "created_at", "removed_at"]
    list_filter = ["status", "tier", "type"]
    search_fields = ["uid", "name", "account__name"]
    list_select_related = ["account"]
    fields = ["uid", "account", "name", "type", "tier", "status", "created_at", "created_by", "removed_at"]
    actions = ["remove_selected"]

    @admin.action(description="Remove selected connections (frees their seats; cannot be undone)…")
    def remove_selected(self, request, queryset):
        return confirmed_action(
            self,
            request,
            queryset,
            title="Remove connections",
            done="removed",
            warning="A removed connection stops syncing; its seat is free at once.",
            apply=lambda connection, actor, ip, reason: remove_connection(connection=connection, actor=actor, ip=ip),
        )


@admin.register(InvoiceUsage)
class InvoiceUsageAdmin(ReadOnlyAdmin):
    list_display = ["account", "tier", "month", "invoices", "updated_at"]
    list_filter = ["tier", "month"]
    search_fields = ["account__name"]
    list_select_related = ["account"]
