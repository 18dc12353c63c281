"""Staff overviews that span domains: partners (with their keys and batches) and customer
accounts (with their subscriptions, seats, certificates and connections).

Partners and customer accounts are created here through the same services as the CLI
(`create_partner`, `create_account`: the tenant with its first user, audited); afterwards their
pages are read-only overviews. They live in their own app so that no domain app imports the
apps above it.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth.password_validation import password_validators_help_text_html
from django.db import transaction
from django.utils import timezone
from django.utils.html import format_html_join

from fiscobridge.accounts.models import Account, Partner, User
from fiscobridge.accounts.services import create_account, create_partner
from fiscobridge.accounts.two_factor import set_partner_two_factor_requirement
from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.core.admin import ReadOnlyInline, changelist_link, count_of
from fiscobridge.core.errors import DomainError
from fiscobridge.core.localtime import DEFAULT_TIME_ZONE, time_zone_choices, zone
from fiscobridge.core.net import client_ip
from fiscobridge.integrations.models import Connection, ConnectionStatus
from fiscobridge.keys.models import ActivationKey, KeyBatch
from fiscobridge.keys.queries import count_by_display_status
from fiscobridge.pos.models import Certificate
from fiscobridge.seats import Seats, int_seats, pos_seats
from fiscobridge.subscriptions.models import Product, Subscription

# --- creating a tenant with its first user ---------------------------------------------------


class TenantAddForm(forms.ModelForm):
    """Name of the tenant, e-mail and password of its first user.

    The service is the validator (name, e-mail, password rules, e-mail already taken), so it runs
    in clean(), where its errors become form errors. The admin runs the whole add view in one
    transaction: if anything after this fails, the tenant and its user are rolled back too.
    """

    email = forms.EmailField(label="First user's e-mail")
    password = forms.CharField(
        label="First user's password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html(),
    )
    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=time_zone_choices,
        initial=DEFAULT_TIME_ZONE,
        help_text="Its pages, e-mails and exports show this zone; its users may change it under Settings.",
    )
    create_tenant = None  # the service: create_partner or create_account

    class Meta:
        fields = ["name"]

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            with transaction.atomic():
                self.first_user = type(self).create_tenant(
                    name=cleaned["name"],
                    email=cleaned["email"],
                    password=cleaned["password"],
                    time_zone=cleaned["time_zone"],
                )
        except DomainError as error:
            field = "email" if error.code == "email_taken" else error.details.get("field")
            self.add_error(field if field in self.fields else None, error.message)
            return cleaned
        self.instance = self.first_user.partner or self.first_user.account
        return cleaned


class PartnerAddForm(TenantAddForm):
    create_tenant = staticmethod(create_partner)

    class Meta(TenantAddForm.Meta):
        model = Partner


class AccountAddForm(TenantAddForm):
    create_tenant = staticmethod(create_account)

    class Meta(TenantAddForm.Meta):
        model = Account


ADD_FIELDS = ["name", "time_zone", "email", "password"]


class TenantAdmin(admin.ModelAdmin):
    """Add through the service; afterwards a read-only overview (name changes are not offered:
    no service renames a tenant)."""

    add_form: type[TenantAddForm]
    search_fields = ["name", "users__email"]

    def get_queryset(self, request):
        # The tenant's own field on User has the model's name: `account` or `partner`.
        return super().get_queryset(request).annotate(n_users=count_of(User, self.model._meta.model_name))

    @admin.display(description="users", ordering="n_users")
    def users_count(self, tenant):
        return tenant.n_users

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
            kwargs["fields"] = ADD_FIELDS
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ADD_FIELDS if obj is None else super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else super().get_readonly_fields(request, obj)

    def get_inlines(self, request, obj):
        return [] if obj is None else super().get_inlines(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # One tenant's page shows its moments in that tenant's zone (a field on the same page),
        # as its own users read them, so staff and customer speak of the same day. Rendered
        # inside the override: a TemplateResponse would otherwise render after it ends.
        tenant = self.get_object(request, object_id)
        with timezone.override(zone(tenant.time_zone) if tenant is not None else None):
            response = super().change_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()
        return response

    def save_model(self, request, obj, form, change):
        # Saved by the service in the form's clean(); only the staff member is recorded here.
        kind = obj._meta.model_name
        record_event(
            action=f"admin.{kind}_created",
            actor=request.user,
            target=obj,
            ip=client_ip(request),
            details={"first_user": form.first_user.pk},
            **{kind: obj},
        )


class UserInline(ReadOnlyInline):
    model = User
    fields = ["email", "name", "is_active", "last_login", "date_joined"]
    readonly_fields = fields
    verbose_name_plural = "users"


@admin.register(Partner)
class PartnerAdmin(TenantAdmin):
    add_form = PartnerAddForm
    list_display = [
        "id",
        "name",
        "users_count",
        "batches_count",
        "keys_count",
        "require_two_factor",
        "time_zone",
        "created_at",
    ]
    list_filter = ["require_two_factor"]
    fields = ["name", "created_at", "time_zone", "require_two_factor", "key_summary", "batches"]
    readonly_fields = ["key_summary", "batches"]
    inlines = [UserInline]
    actions = ["require_two_factor_action", "stop_requiring_two_factor_action"]

    def _set_two_factor(self, request, queryset, required: bool) -> None:
        for partner in queryset:
            set_partner_two_factor_requirement(partner=partner, required=required, actor=request.user)
        verb = "now require" if required else "no longer require"
        self.message_user(request, f"{queryset.count()} partner(s) {verb} two-factor sign-in.")

    @admin.action(description="Require two-factor sign-in for the selected partners' users")
    def require_two_factor_action(self, request, queryset):
        self._set_two_factor(request, queryset, True)

    @admin.action(description="Stop requiring two-factor sign-in for the selected partners' users")
    def stop_requiring_two_factor_action(self, request, queryset):
        self._set_two_factor(request, queryset, False)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(n_batches=count_of(KeyBatch, "partner"), n_keys=count_of(ActivationKey, "partner"))
        )

    @admin.display(description="batches", ordering="n_batches")
    def batches_count(self, partner):
        return changelist_link(KeyBatch, partner.n_batches, partner__id__exact=partner.pk)

    @admin.display(description="keys", ordering="n_keys")
    def keys_count(self, partner):
        return changelist_link(ActivationKey, partner.n_keys, partner__id__exact=partner.pk)

    @admin.display(description="keys by product and status")
    def key_summary(self, partner):
        moment = clock.now()
        rows = []
        for product in Product:
            counts = count_by_display_status(ActivationKey.objects.filter(partner=partner, product=product), moment)
            rows.append((product.label, " · ".join(f"{status}: {n}" for status, n in counts.items())))
        return format_html_join("", "<div><strong>{}</strong> — {}</div>", rows)

    @admin.display(description="batches")
    def batches(self, partner):
        return changelist_link(KeyBatch, f"{partner.batches.count()} batches", partner__id__exact=partner.pk)


class SubscriptionInline(ReadOnlyInline):
    model = Subscription
    fk_name = "account"
    fields = ["product", "tier", "seats", "source", "key_hint", "started_at", "expires_at", "ended_at", "status"]
    readonly_fields = fields
    ordering = ["-expires_at"]
    verbose_name_plural = "subscriptions"


def _package_name(seats: Seats) -> str:
    return Product.POS.label if seats.package == Product.POS else f"Integrations {seats.package}"


@admin.register(Account)
class AccountAdmin(TenantAdmin):
    add_form = AccountAddForm
    list_display = ["id", "name", "users_count", "subscriptions_count", "time_zone", "created_at"]
    fields = ["name", "created_at", "time_zone", "seats", "certificates", "connections"]
    readonly_fields = ["seats", "certificates", "connections"]
    inlines = [UserInline, SubscriptionInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_subscriptions=count_of(Subscription, "account"))

    @admin.display(description="subscriptions", ordering="n_subscriptions")
    def subscriptions_count(self, account):
        return changelist_link(Subscription, account.n_subscriptions, account__id__exact=account.pk)

    @admin.display(description="seats (used / total)")
    def seats(self, account):
        moment = clock.now()
        integrations = int_seats(account, moment)
        packages = [pos_seats(account, moment), *integrations.tiers.values()]
        if integrations.trial_allowance is not None:
            packages.append(integrations.trial)
        rows = [(_package_name(seats), f"{seats.used} / {seats.total}") for seats in packages]
        return format_html_join("", "<div><strong>{}</strong>: {}</div>", rows)

    @admin.display(description="certificates")
    def certificates(self, account):
        return changelist_link(
            Certificate, f"{account.certificates.count()} certificates", account__id__exact=account.pk
        )

    @admin.display(description="connections")
    def connections(self, account):
        active = account.connections.filter(status=ConnectionStatus.ACTIVE).count()
        return changelist_link(Connection, f"{active} active connections", account__id__exact=account.pk)
