"""Staff view of Cloud POS certificates. The encrypted file and password are never shown (the
fields are whitelisted); revoking goes through the service, which frees the seat and audits."""

from django.contrib import admin

from fiscobridge.core.admin import DisplayStatusFilter, ReadOnlyAdmin, confirmed_action
from fiscobridge.pos.models import Certificate, CertificateDisplayStatus
from fiscobridge.pos.services import revoke_certificate


class CertificateStatusFilter(DisplayStatusFilter):
    statuses = CertificateDisplayStatus.values


@admin.register(Certificate)
class CertificateAdmin(ReadOnlyAdmin):
    list_display = ["uid", "account", "taxpayer", "location", "pac", "not_after", "certificate_status", "uploaded_at"]
    list_filter = [CertificateStatusFilter]
    search_fields = ["uid", "taxpayer", "location", "pac", "serial", "fingerprint", "account__name"]
    list_select_related = ["account"]
    date_hierarchy = "uploaded_at"
    # A whitelist: `file_encrypted` and `password_encrypted` never reach a page.
    fields = [
        "uid",
        "account",
        "certificate_status",
        "taxpayer",
        "location",
        "pac",
        "serial",
        "fingerprint",
        "not_before",
        "not_after",
        "file_name",
        "uploaded_at",
        "uploaded_by",
        "revoked_at",
    ]
    readonly_fields = ["certificate_status"]
    actions = ["revoke_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("file_encrypted", "password_encrypted")

    @admin.display(description="status")
    def certificate_status(self, certificate):
        return certificate.display_status

    @admin.action(description="Revoke selected certificates (frees their seats; cannot be undone)…")
    def revoke_selected(self, request, queryset):
        return confirmed_action(
            self,
            request,
            queryset,
            title="Revoke certificates",
            done="revoked",
            warning="A revoked certificate can never sign again; its seat is free at once.",
            apply=lambda certificate, actor, ip, reason: revoke_certificate(
                certificate=certificate, actor=actor, ip=ip
            ),
        )
