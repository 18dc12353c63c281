from django.contrib import admin

from fiscobridge.core.admin import ReadOnlyAdmin
from fiscobridge.audit.models import Event


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """Append-only: staff read events, nobody edits or deletes them."""

    list_display = ["at", "action", "actor", "account", "partner", "target_type", "target_id", "ip"]
    list_filter = ["action"]
    search_fields = ["action", "actor__email", "account__name", "partner__name", "target_id"]
    date_hierarchy = "at"
    list_select_related = ["actor", "account", "partner"]
