from django.contrib import admin

from fiscobridge.audit.models import Event
from fiscobridge.core.admin import ReadOnlyAdmin


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """Append-only: staff read events, nobody edits or deletes them."""

    list_display = ["at", "action", "actor", "account", "partner", "target_type", "target_id", "ip"]
    list_filter = ["action", "target_type"]
    search_fields = ["action", "actor__email", "account__name", "partner__name", "target_id", "ip"]
    search_help_text = "An action (key.voided), an e-mail, a customer or partner name, a target id or an IP"
    date_hierarchy = "at"
    list_select_related = ["actor", "account", "partner"]
    show_full_result_count = False
    fields = ["at", "action", "actor", "account", "partner", "target_type", "target_id", "ip", "details"]
