"""The Settings page of both portals: the tenant's time zone, changed by any of its users."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from fiscobridge.accounts.services import set_time_zone
from fiscobridge.core import clock
from fiscobridge.core.errors import DomainError
from fiscobridge.core.localtime import MARKET_TIME_ZONES, moment_text, time_zone_choices


def _grouped_choices() -> list:
    """The market zones in their own group first, then every zone (Django renders optgroups)."""
    every = time_zone_choices()
    return [
        ("Fiji, Samoa and Vanuatu", every[: len(MARKET_TIME_ZONES)]),
        ("Every time zone", every[len(MARKET_TIME_ZONES) :]),
    ]


class TimeZoneForm(forms.Form):
    """Only the shape; whether the zone is known is the service's rule (its error becomes the
    field's error), so an unknown name typed into a forged request says the same as here."""

    time_zone = forms.CharField(
        label="Time zone",
        widget=forms.Select(choices=[]),
        help_text="Dates and times in the portal, e-mails and CSV exports are shown in this zone.",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].widget.choices = _grouped_choices()


def settings_views(page, *, template: str, back_to: str):
    """The Settings view of one portal, behind its `page` decorator (`customer_page` or
    `partner_page`): the tenant passed in is always the requester's own, so nobody can change
    another tenant's zone (there is no id in the request to point elsewhere)."""

    @require_http_methods(["GET", "POST"])
    @page
    def settings_page(request: HttpRequest, tenant) -> HttpResponse:
        status = 200
        if request.method == "POST":
            form = TimeZoneForm(request.POST)
            if form.is_valid():
                try:
                    set_time_zone(tenant=tenant, time_zone=form.cleaned_data["time_zone"], actor=request.user)
                except DomainError as refused:
                    form.add_error("time_zone", refused.message)
                else:
                    messages.success(request, f"Time zone set to {tenant.time_zone}.")
                    return redirect(back_to)
            status = 422
        else:
            form = TimeZoneForm(initial={"time_zone": tenant.time_zone})
        return render(
            request,
            template,
            {
                "active_nav": "settings",
                "form": form,
                "tenant": tenant,
                # In the saved zone, not the middleware's: explicit, so it is right after a change too.
                "now_local": moment_text(clock.now(), tenant.time_zone),
            },
            status=status,
        )

    return settings_page
