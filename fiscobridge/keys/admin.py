"""Staff views of batches and keys: read-only (a code is never stored, so never shown);
changes go through the services, as everywhere else."""

from django.contrib import admin, messages

from fiscobridge.core.admin import ReadOnlyAdmin
from fiscobridge.core.errors import DomainError
from fiscobridge.core.net import client_ip
from fiscobridge.keys.models import ActivationKey, KeyBatch
from fiscobridge.keys.services import revoke_key, void_key


@admin.register(KeyBatch)
class KeyBatchAdmin(ReadOnlyAdmin):
    list_display = ["id", "partner", "product", "tier", "seats", "months", "quantity", "reference", "redeem_by", "created_at"]
    list_filter = ["product", "tier"]
    search_fields = ["reference", "partner__name"]


@admin.register(ActivationKey)
class ActivationKeyAdmin(ReadOnlyAdmin):
    list_display = ["id", "hint", "partner", "product", "tier", "seats", "months", "status", "activated_account", "created_at"]
    list_filter = ["status", "product", "tier"]
    search_fields = ["last_group", "reference", "partner__name", "activated_account__name"]
    exclude = ["code_hmac"]
    list_select_related = ["partner", "activated_account"]
    actions = ["revoke_selected", "void_selected"]

    def _apply(self, request, queryset, service, done: str, reason: str):
        ok = 0
        for key in queryset:
            try:
                service(key=key, reason=reason, actor=request.user, ip=client_ip(request))
                ok += 1
            except DomainError as error:
                self.message_user(request, f"{key.hint}: {error.message}", messages.WARNING)
        if ok:
            self.message_user(request, f"{ok} key(s) {done}.", messages.SUCCESS)

    @admin.action(description="Revoke selected keys (unredeemed only)")
    def revoke_selected(self, request, queryset):
        self._apply(request, queryset, revoke_key, "revoked", "revoked by staff")

    @admin.action(description="Void selected keys: end their subscriptions now (fraud, chargeback)")
    def void_selected(self, request, queryset):
        self._apply(request, queryset, void_key, "voided", "voided by staff")
