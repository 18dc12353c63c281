"""Staff views of batches and keys: read-only (a code is never stored, so never shown, and the
HMAC that finds one is never shown either); changes go through the services, as everywhere else."""

import re

from django.contrib import admin

from fiscobridge.core import clock
from fiscobridge.core.admin import (
    DisplayStatusFilter,
    ReadOnlyAdmin,
    admin_link,
    changelist_link,
    confirmed_action,
    count_of,
)
from fiscobridge.keys.models import ActivationKey, KeyBatch, KeyDisplayStatus, KeyStatus
from fiscobridge.keys.queries import count_by_display_status
from fiscobridge.keys.services import revoke_key, void_key

HINT_TAIL = re.compile(r"[A-Za-z0-9]{4}$")


class KeyDisplayStatusFilter(DisplayStatusFilter):
    """The status a partner sees: `expired` and `voided` are derived, never stored."""

    statuses = KeyDisplayStatus.values


@admin.register(KeyBatch)
class KeyBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "partner",
        "product",
        "tier",
        "seats",
        "months",
        "quantity",
        "activated",
        "revoked",
        "reference",
        "redeem_by",
        "created_at",
    ]
    list_filter = ["product", "tier", "partner"]
    search_fields = ["reference", "partner__name"]
    list_select_related = ["partner"]
    fields = [
        "partner",
        "product",
        "tier",
        "seats",
        "months",
        "quantity",
        "reference",
        "redeem_by",
        "created_at",
        "created_by",
        "key_counts",
    ]
    readonly_fields = ["key_counts"]
    show_full_result_count = False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                activated_count=count_of(ActivationKey, "batch", status=KeyStatus.ACTIVATED),
                revoked_count=count_of(ActivationKey, "batch", status=KeyStatus.REVOKED),
            )
        )

    @admin.display(description="activated", ordering="activated_count")
    def activated(self, batch):
        return batch.activated_count

    @admin.display(description="revoked", ordering="revoked_count")
    def revoked(self, batch):
        return batch.revoked_count

    @admin.display(description="keys")
    def key_counts(self, batch):
        counts = count_by_display_status(ActivationKey.objects.filter(batch=batch), clock.now())
        parts = [f"{status}: {n}" for status, n in counts.items()]
        return changelist_link(ActivationKey, " · ".join(parts), batch__id__exact=batch.pk)


@admin.register(ActivationKey)
class ActivationKeyAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "hint",
        "partner",
        "batch_link",
        "product",
        "tier",
        "seats",
        "months",
        "key_status",
        "reference",
        "activated_account",
        "activated_at",
        "created_at",
    ]
    list_filter = [KeyDisplayStatusFilter, "product", "tier", "partner"]
    search_fields = ["last_group", "reference", "partner__name", "activated_account__name"]
    search_help_text = "A hint (POS-••••-••••-ABCD or ABCD), a reference, a partner or a customer name"
    list_select_related = ["partner", "activated_account", "batch"]
    show_full_result_count = False  # a partner may hold a million keys
    # A whitelist, so a future column never shows up by accident; `code_hmac` stays out.
    fields = [
        "hint",
        "key_status",
        "partner",
        "batch",
        "product",
        "tier",
        "seats",
        "months",
        "reference",
        "redeem_by",
        "created_at",
        "activated_account",
        "activated_by",
        "activated_at",
        "subscription_link",
        "revoked_at",
        "revoked_reason",
        "voided_at",
        "voided_reason",
    ]
    readonly_fields = ["hint", "key_status", "subscription_link"]
    actions = ["revoke_selected", "void_selected"]

    def get_search_results(self, request, queryset, search_term):
        # A pasted hint (`POS-••••-••••-ABCD`) searches by its last group.
        term = search_term.strip()
        if "•" in term and HINT_TAIL.search(term):
            return queryset.filter(last_group=term[-4:].upper()), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="status")
    def key_status(self, key):
        return key.display_status

    @admin.display(description="batch", ordering="batch")
    def batch_link(self, key):
        return admin_link(key.batch, f"#{key.batch_id}")

    @admin.display(description="subscription")
    def subscription_link(self, key):
        return admin_link(getattr(key, "subscription", None))

    @admin.action(description="Revoke selected keys (unredeemed only)…")
    def revoke_selected(self, request, queryset):
        return confirmed_action(
            self,
            request,
            queryset,
            title="Revoke keys",
            done="revoked",
            needs_reason=True,
            warning="Revoked keys can never be activated. Activated keys are skipped (void them instead).",
            apply=lambda key, **who: revoke_key(key=key, **who),
        )

    @admin.action(description="Void selected keys: end their subscriptions now (fraud, chargeback)…")
    def void_selected(self, request, queryset):
        return confirmed_action(
            self,
            request,
            queryset,
            title="Void keys",
            done="voided",
            needs_reason=True,
            warning="The customer's subscription ends at once; the customer and the partner are e-mailed.",
            apply=lambda key, **who: void_key(key=key, **who),
        )
