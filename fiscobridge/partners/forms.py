"""The shape of what a partner types. The rules themselves live in the key services."""

from datetime import date

from django import forms
from django.conf import settings

from fiscobridge.keys.issuance import REDEEM_BY_HORIZON
from fiscobridge.subscriptions.models import Product, Tier

CONSOLE_BACKEND = "django.core.mail.backends.console.EmailBackend"


class IssueForm(forms.Form):
    product = forms.ChoiceField(choices=Product.choices, initial=Product.POS)
    tier = forms.ChoiceField(choices=[("", "—"), *Tier.choices], required=False, help_text="Integrations keys only")
    seats = forms.IntegerField(min_value=1, max_value=1000, initial=1)
    months = forms.IntegerField(min_value=1, max_value=60, initial=12, label="Months of validity")
    quantity = forms.IntegerField()  # replaced in __init__
    reference = forms.CharField(
        max_length=200, required=False, help_text="Your own note, e.g. an order number. Shown in lists and searchable."
    )
    redeem_by = forms.DateField(
        required=False,
        label="Redeem by (optional)",
        help_text="Unused keys stop working at the end of this day, in your time zone.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    email = forms.EmailField(
        required=False,
        label="E-mail this key to a customer (optional)",
        help_text="Single keys only. The key is sent once and not kept.",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        limit = settings.KEY_ISSUE_MAX_PER_REQUEST  # a setting, so the field is built per form
        self.fields["quantity"] = forms.IntegerField(
            min_value=1, max_value=limit, initial=1, label="Number of keys", help_text=f"1 to {limit:,}"
        )
        # The console backend prints messages to the server log: a key must never go there, so
        # without a real mail server the feature is off (SPEC 5.1: a clear notice, no crash).
        self.can_email = settings.EMAIL_BACKEND != CONSOLE_BACKEND
        if not self.can_email:
            del self.fields["email"]

    def clean_redeem_by(self):
        day = self.cleaned_data.get("redeem_by")
        if day is not None and day > date.today() + REDEEM_BY_HORIZON:
            raise forms.ValidationError("Redeem-by must be within 100 years")
        return day

    def clean(self):
        data = super().clean()
        if data.get("product") == Product.INT and not data.get("tier"):
            self.add_error("tier", "Integrations keys need a tier: Starter, Growth or Scale")
        if data.get("product") == Product.POS:
            data["tier"] = ""  # the tier select may still hold a value the page hid
        if data.get("email") and data.get("quantity") not in (None, 1):
            self.add_error("email", "A key can be e-mailed only when you issue a single key")
        return data

    def redeem_by_day(self):
        """The date typed: "usable through that day" in the partner's zone, as in the API and the
        CLI (the issuing service turns it into that local midnight)."""
        return self.cleaned_data.get("redeem_by")
