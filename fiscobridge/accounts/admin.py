"""Staff admin for users and API tokens.

Users may be added to a tenant and edited, within the rule of the model: a user belongs to one
customer account, or one partner, or is staff. The overviews of partners and customer accounts
are in `fiscobridge.staff`.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm, UserChangeForm
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from fiscobridge.accounts.models import ApiToken, User
from fiscobridge.accounts.two_factor import reset_two_factor
from fiscobridge.audit.services import record_event
from fiscobridge.core.net import client_ip

# django-otp's own admin pages would show every user's authenticator secret and recovery codes
# to staff; staff reset a user's second factor with the action on users instead.
for _device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_device_model):
        admin.site.unregister(_device_model)

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


class OneTenantUserForm(forms.ModelForm):
    """The rules of both user forms: a unique e-mail, and one tenant (or staff)."""

    def clean_email(self):
        return _unique_email(self)

    def clean(self):
        cleaned = super().clean()
        _check_one_tenant(self)
        return cleaned


class UserAddForm(OneTenantUserForm, BaseUserCreationForm):
    class Meta:
        model = User
        fields = ["email", "name", "account", "partner", "is_staff"]


class UserEditForm(OneTenantUserForm, UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = ["email", "name", "password", "account", "partner", "is_active", "is_staff", "is_superuser"]


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
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "name", "password1", "password2", "account", "partner", "is_staff"],
            },
        )
    ]
    readonly_fields = ["last_login", "date_joined"]
    filter_horizontal = []
    actions = ["reset_two_factor_action"]

    @admin.action(description="Reset two-factor sign-in of the selected users (lost phone)")
    def reset_two_factor_action(self, request, queryset):
        for user in queryset:
            reset_two_factor(user=user, actor=request.user)
        self.message_user(request, f"Two-factor sign-in reset for {queryset.count()} user(s).")

    def has_delete_permission(self, request, obj=None):
        return False  # deactivate instead: events, keys and certificates keep pointing at users

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        changed = sorted(set(form.changed_data) - {"password1", "password2"})
        record_event(
            action="admin.user_changed" if change else "admin.user_created",
            actor=request.user,
            account=obj.account,
            partner=obj.partner,
            target=obj,
            ip=client_ip(request),
            details={"fields": changed},
        )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "name", "scopes", "created_at", "last_used_at", "revoked_at"]
    search_fields = ["prefix", "user__email"]
    exclude = ["digest"]
    readonly_fields = ["user", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["user"]

    def has_add_permission(self, request):
        return False  # tokens are created by their user (shown once), never by staff

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
