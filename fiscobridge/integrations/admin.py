from django.contrib import admin

from fiscobridge.core.admin import ReadOnlyAdmin
from fiscobridge.integrations.models import Connection, ConnectionUsage



@admin.register(Connection)
class ConnectionAdmin(ReadOnlyAdmin):
    list_display = ["uid", "account", "name", "type", "tier", "status", "created_at", "removed_at"]
    list_filter = ["status", "tier", "type"]
    search_fields = ["uid", "name", "account__name"]
    list_select_related = ["account"]


@admin.register(ConnectionUsage)
class ConnectionUsageAdmin(ReadOnlyAdmin):
    list_display = ["connection", "month", "invoices", "updated_at"]
    list_filter = ["month"]
    search_fields = ["connection__uid", "connection__account__name"]
    list_select_related = ["connection"]
