"""Staff view of subscriptions: read-only; status is derived from the dates, as everywhere."""

from django.contrib import admin
from django.db.models import Q

from fiscobridge.core import clock
from fiscobridge.core.admin import ReadOnlyAdmin, admin_link
from fiscobridge.subscriptions.models import Status, Subscription


class SubscriptionStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return Status.choices

    def queryset(self, request, queryset):
        moment = clock.now()
        not_ended = Q(ended_at__isnull=True) | Q(ended_at__gt=moment)
        return {
            Status.SCHEDULED: lambda: queryset.filter(not_ended, started_at__gt=moment),
            Status.ACTIVE: lambda: queryset.active(moment),
            Status.EXPIRED: lambda: queryset.filter(not_ended, expires_at__lte=moment),
            Status.CANCELLED: lambda: queryset.filter(ended_at__lte=moment),
        }.get(self.value(), lambda: queryset)()


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "account",
        "product",
        "tier",
        "seats",
        "source",
        "key_hint",
        "started_at",
        "expires_at",
        "status",
    ]
    list_filter = [SubscriptionStatusFilter, "product", "tier", "source"]
    search_fields = ["account__name", "key_hint", "stripe_subscription_id"]
    list_select_related = ["account"]
    date_hierarchy = "expires_at"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "account",
                    "product",
                    "tier",
                    "seats",
                    "source",
                    "status",
                    "started_at",
                    "expires_at",
                    "ended_at",
                    "ended_reason",
                    "created_at",
                ]
            },
        ),
        ("Activation key", {"fields": ["key_link", "key_hint", "renews_link", "renewed_by_link"]}),
        (
            "Stripe",
            {
                "fields": [
                    "stripe_subscription_id",
                    "stripe_item_id",
                    "stripe_price_id",
                    "stripe_status",
                    "billing_interval",
                    "cancel_at_period_end",
                    "past_due_since",
                ]
            },
        ),
    ]
    readonly_fields = ["status", "key_link", "renews_link", "renewed_by_link"]

    @admin.display(description="activation key")
    def key_link(self, subscription):
        return admin_link(subscription.activation_key)

    @admin.display(description="renews")
    def renews_link(self, subscription):
        return admin_link(subscription.renews)

    @admin.display(description="renewed by")
    def renewed_by_link(self, subscription):
        return admin_link(getattr(subscription, "renewed_by", None))
