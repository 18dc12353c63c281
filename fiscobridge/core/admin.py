"""Shared pieces of the staff admin: a read-only base and confirmed, service-backed actions."""

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from fiscobridge.core.errors import DomainError
from fiscobridge.core.net import client_ip

# A confirmation page lists every selected object; past this, staff narrow the selection first.
MAX_ACTION_OBJECTS = 1000


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff look; every change goes through a service (and its audit event), never a form."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


def confirmed_action(
    modeladmin: admin.ModelAdmin,
    request,
    queryset,
    *,
    title: str,
    apply: Callable,
    done: str,
    needs_reason: bool = False,
    warning: str = "",
):
    """A two-step admin action: a confirmation page (with a reason when the service takes one),
    then `apply(obj, actor=, ip=, reason=)` for each selected object — a service call, so each
    change is checked and audited exactly as from the portal or the API.

    Returns the page to show, or None to go back to the list (Django's action protocol).
    """
    count = queryset.count()
    if count > MAX_ACTION_OBJECTS:
        modeladmin.message_user(
            request,
            f"Select at most {MAX_ACTION_OBJECTS} objects for this action (filter the list first).",
            messages.ERROR,
        )
        return None
    form = ReasonForm(request.POST if request.POST.get("confirm") == "yes" else None) if needs_reason else None
    if request.POST.get("confirm") == "yes" and (form is None or form.is_valid()):
        reason = form.cleaned_data["reason"] if form is not None else ""
        ok = 0
        for obj in queryset:
            try:
                apply(obj, actor=request.user, ip=client_ip(request), reason=reason)
                ok += 1
            except DomainError as error:
                modeladmin.message_user(request, f"{obj}: {error.message}", messages.WARNING)
        if ok:
            modeladmin.message_user(
                request, f"{ok} {modeladmin.model._meta.verbose_name_plural} {done}.", messages.SUCCESS
            )
        return None
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": opts,
        "objects": list(queryset),
        "form": form,
        "warning": warning,
        "action": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
    }
    return TemplateResponse(request, "admin/confirm_service_action.html", context)


def count_of(model, field: str, **filters) -> Coalesce:
    """A correlated COUNT for list columns: evaluated only for the rows of the shown page,
    where a JOIN + GROUP BY would count over every row of both tables first."""
    rows = model.objects.filter(**{field: OuterRef("pk")}, **filters).order_by().values(field)
    return Coalesce(Subquery(rows.annotate(n=Count("pk")).values("n")[:1], output_field=IntegerField()), 0)


def admin_link(obj, text=None):
    """A link to an object's admin page (shown read-only or editable, as permitted)."""
    if obj is None:
        return "—"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else str(obj))


def changelist_link(model, text, **params):
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return format_html('<a href="{}?{}">{}</a>', url, query, text)


class DisplayStatusFilter(admin.SimpleListFilter):
    """Filter by the status people see, derived (e.g. `expired`) as well as stored.

    Subclasses set `statuses`; the queryset must offer `with_display_status(status)`.
    """

    title = "status"
    parameter_name = "status"
    statuses: list[str] = []

    def lookups(self, request, model_admin):
        return [(status, status.capitalize()) for status in self.statuses]

    def queryset(self, request, queryset):
        if self.value() in self.statuses:
            return queryset.with_display_status(self.value())
        return queryset
