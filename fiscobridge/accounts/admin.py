"""Staff admin for tenants and users.

Partners and customer accounts are created here through the same services as the CLI
(`create_partner`, `create_account`: the tenant with its first user, audited); afterwards their
pages are read-only overviews. Users may be added to a tenant and edited, within the rule of
the model: a user belongs to one customer account, or one partner, or is staff.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm, UserChangeForm
from django.contrib.auth.password_validation import password_validators_help_text_html
from django.db import transaction
from django.utils.html import format_html_join

from fiscobridge.accounts.models import Account, ApiToken, Partner, User
from fiscobridge.accounts.services import create_account, create_partner
from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.core.admin import ReadOnlyInline, changelist_link, count_of
from fiscobridge.core.errors import DomainError
from fiscobridge.core.net import client_ip
from fiscobridge.integrations.models import Connection, ConnectionStatus
from fiscobridge.integrations.usage import active_connections_by_tier
from fiscobridge.keys.models import DISPLAY_STATUSES, ActivationKey, KeyBatch
from fiscobridge.pos.models import Certificate
from fiscobridge.pos.usage import active_certificate_count
from fiscobridge.subscriptions.capacity import int_capacity_by_tier, int_trial, pos_capacity
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
        label="First user's password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html(),
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
                    name=cleaned["name"], email=cleaned["email"], password=cleaned["password"]
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


class TenantAdmin(admin.ModelAdmin):
    """Add through the service; afterwards a read-only overview (name changes are not offered:
    no service renames a tenant)."""

    add_form: type[TenantAddForm]
    search_fields = ["name", "users__email"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
            kwargs["fields"] = ["name", "email", "password"]
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["name", "email", "password"] if obj is None else super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else super().get_readonly_fields(request, obj)

    def get_inlines(self, request, obj):
        return [] if obj is None else super().get_inlines(request, obj)

    def save_model(self, request, obj, form, change):
        # Saved by the service in the form's clean(); only the staff member is recorded here.
        kind = obj._meta.model_name
        record_event(
            action=f"admin.{kind}_created", actor=request.user, target=obj, ip=client_ip(request),
            details={"first_user": form.first_user.pk}, **{kind: obj},
        )


class UserInline(ReadOnlyInline):
    model = User
    fields = ["email", "name", "is_active", "last_login", "date_joined"]
    readonly_fields = fields
    verbose_name_plural = "users"


@admin.register(Partner)
class PartnerAdmin(TenantAdmin):
    add_form = PartnerAddForm
    list_display = ["id", "name", "users_count", "batches_count", "keys_count", "created_at"]
    fields = ["name", "created_at", "key_summary", "batches"]
    readonly_fields = ["key_summary", "batches"]
    inlines = [UserInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_users=count_of(User, "partner"), n_batches=count_of(KeyBatch, "partner"),
            n_keys=count_of(ActivationKey, "partner"),
        )

    @admin.display(description="users", ordering="n_users")
    def users_count(self, partner):
        return partner.n_users

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
            keys = ActivationKey.objects.filter(partner=partner, product=product)
            counts = " · ".join(f"{s}: {keys.with_display_status(s, moment).count()}" for s in DISPLAY_STATUSES)
            rows.append((product.label, counts))
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


@admin.register(Account)
class AccountAdmin(TenantAdmin):
    add_form = AccountAddForm
    list_display = ["id", "name", "users_count", "subscriptions_count", "created_at"]
    fields = ["name", "created_at", "seats", "certificates", "connections"]
    readonly_fields = ["seats", "certificates", "connections"]
    inlines = [UserInline, SubscriptionInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_users=count_of(User, "account"), n_subscriptions=count_of(Subscription, "account"),
        )

    @admin.display(description="users", ordering="n_users")
    def users_count(self, account):
        return account.n_users

    @admin.display(description="subscriptions", ordering="n_subscriptions")
    def subscriptions_count(self, account):
        return changelist_link(Subscription, account.n_subscriptions, account__id__exact=account.pk)

    @admin.display(description="seats (used / total)")
    def seats(self, account):
        moment = clock.now()
        rows = [("Cloud POS", f"{active_certificate_count(account)} / {pos_capacity(account, moment)}")]
        used = active_connections_by_tier(account)
        for tier, total in int_capacity_by_tier(account, moment).items():
            rows.append((f"Integrations {tier}", f"{used.get(tier, 0)} / {total}"))
        trial = int_trial(account, moment)
        if trial is not None:
            rows.append(("Integrations trial", f"{used.get('trial', 0)} / {trial.connections}"))
        return format_html_join("", "<div><strong>{}</strong>: {}</div>", rows)

    @admin.display(description="certificates")
    def certificates(self, account):
        return changelist_link(Certificate, f"{account.certificates.count()} certificates", account__id__exact=account.pk)

    @admin.display(description="connections")
    def connections(self, account):
        active = account.connections.filter(status=ConnectionStatus.ACTIVE).count()
        return changelist_link(Connection, f"{active} active connections", account__id__exact=account.pk)


# --- users -----------------------------------------------------------------------------------

def _check_one_tenant(form: forms.ModelForm) -> None:
    """A user belongs to one customer account, or one partner, or is staff (SPEC 1)."""
    data = form.cleaned_data
    account, partner, is_staff = data.get("account"), data.get("partner"), data.get("is_staff")
    if account and partner:
        form.add_error(None, "A user belongs to one customer account or one partner, not both.")
    elif (account or partner) and is_staff:
        form.add_error(None, "Staff users belong to no customer account or partner.")
    elif not (account or partner or is_staff):
        form.add_error(None, "Choose the user's customer account or partner, or make the user staff.")


def _unique_email(form: forms.ModelForm) -> str:
    """E-mail logins are lower case (as `create_user` stores them) and unique in any case."""
    email = form.cleaned_data["email"].strip().lower()
    if User.objects.filter(email__iexact=email).exclude(pk=form.instance.pk).exists():
        raise forms.ValidationError("A user with this e-mail already exists.")
    return email


class UserAddForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ["email", "name", "account", "partner", "is_staff"]

    def clean_email(self):
        return _unique_email(self)

    def clean(self):
        cleaned = super().clean()
        _check_one_tenant(self)
        return cleaned


class UserEditForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"

    def clean_email(self):
        return _unique_email(self)

    def clean(self):
        cleaned = super().clean()
        _check_one_tenant(self)
        return cleaned


class TenantKindFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [("customer", "Customer"), ("partner", "Partner"), ("staff", "Staff")]

    def queryset(self, request, queryset):
        return {
            "customer": lambda: queryset.filter(account__isnull=False),
            "partner": lambda: queryset.filter(partner__isnull=False),
            "staff": lambda: queryset.filter(is_staff=True),
        }.get(self.value(), lambda: queryset)()


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserEditForm
    add_form = UserAddForm
    ordering = ["email"]
    list_display = ["email", "name", "account", "partner", "is_staff", "is_active", "last_login"]
    list_filter = [TenantKindFilter, "is_staff", "is_active"]
    search_fields = ["email", "name", "account__name", "partner__name"]
    list_select_related = ["account", "partner"]
    autocomplete_fields = ["account", "partner"]
    fieldsets = [
        (None, {"fields": ["email", "name", "password"]}),
        ("Tenant (one of them, or staff)", {"fields": ["account", "partner"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "name", "password1", "password2", "account",
                                                              "partner", "is_staff"]})]
    readonly_fields = ["last_login", "date_joined"]
    filter_horizontal = []

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: events, keys and certificates keep pointing at users

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        changed = sorted(set(form.changed_data) - {"password1", "password2"})
        record_event(
            action="admin.user_changed" if change else "admin.user_created", actor=request.user,
            account=obj.account, partner=obj.partner, target=obj, ip=client_ip(request),
            details={"fields": changed},
        )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "name", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["prefix", "user__email"]
    exclude = ["digest"]
    readonly_fields = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["user"]

    def has_add_permission(self, request):
        return False  # tokens are created by their user (shown once), never by staff

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
