from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "fiscobridge.billing"
    label = "billing"
    verbose_name = "Billing (Stripe)"
