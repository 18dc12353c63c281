"""Staff view of the e-mail outbox: what was sent to whom, what is waiting and why."""

from django.contrib import admin, messages

from fiscobridge.core.admin import ReadOnlyAdmin
from fiscobridge.notifications.models import EmailStatus, OutboundEmail
from fiscobridge.notifications.sending import requeue, send_outbound


@admin.register(OutboundEmail)
class OutboundEmailAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "subject", "to", "status", "attempts", "last_error", "sent_at"]
    list_filter = ["status", "kind"]
    search_fields = ["subject", "dedupe_key", "account__name", "partner__name"]
    list_select_related = ["account", "partner"]
    date_hierarchy = "created_at"
    fields = [
        "kind",
        "status",
        "recipients",
        "subject",
        "body",
        "dedupe_key",
        "account",
        "partner",
        "subscription",
        "attempts",
        "last_error",
        "created_at",
        "last_attempt_at",
        "sent_at",
    ]
    actions = ["send_now", "requeue_failed"]

    @admin.display(description="to")
    def to(self, email):
        return ", ".join(email.recipients)

    @admin.action(description="Send the selected pending e-mails now")
    def send_now(self, request, queryset):
        report = send_outbound(ids=list(queryset.filter(status=EmailStatus.PENDING).values_list("pk", flat=True)))
        level = messages.WARNING if report.failed else messages.SUCCESS
        self.message_user(request, f"Sent {report.sent}; failed {report.failed} (they stay pending).", level)

    @admin.action(description="Queue the selected given-up e-mails again")
    def requeue_failed(self, request, queryset):
        count = requeue(emails=queryset)
        self.message_user(request, f"{count} e-mails will be tried again by the next run.", messages.SUCCESS)
