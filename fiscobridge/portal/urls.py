from django.urls import path

from fiscobridge.portal import (
    activation_views,
    billing_views,
    integrations_views,
    pos_views,
    views,
)

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("pos/", pos_views.pos_manager, name="pos_manager"),
    path("pos/seats/", pos_views.seat_header, name="pos_seat_header"),
    path("pos/certificates/", pos_views.certificates_table, name="pos_certificates"),
    path("pos/certificates/upload/", pos_views.upload, name="pos_upload"),
    path("pos/certificates/revoke/", pos_views.revoke, name="pos_revoke"),
    path("pos/buy/", views.buy_pos_license, name="buy_pos"),
    path("integrations/", integrations_views.integrations, name="integrations"),
    path("integrations/usage/", integrations_views.usage_header, name="int_usage_header"),
    path("integrations/connections/", integrations_views.create, name="int_create"),
    path("integrations/connections/remove/", integrations_views.remove, name="int_remove"),
    path("keys/validate/", activation_views.validate, name="key_validate"),
    path("keys/activate/", activation_views.activate, name="key_activate"),
    path("billing/subscriptions/", views.subscriptions, name="subscriptions"),
    path("billing/checkout/", billing_views.checkout, name="billing_checkout"),
    path("billing/checkout/success/", billing_views.checkout_success, name="billing_checkout_success"),
    path("billing/checkout/status/", billing_views.checkout_status, name="billing_checkout_status"),
    path("billing/checkout/cancelled/", billing_views.checkout_cancelled, name="billing_checkout_cancelled"),
    path("billing/portal/", billing_views.customer_portal, name="billing_portal"),
    path("billing/seats/", billing_views.change_seats, name="billing_change_seats"),
    path("billing/invoices/", billing_views.invoices, name="billing_invoices"),
    path("activity/", views.activity, name="activity"),
    path("tokens/", views.api_tokens, name="api_tokens"),
    path("tokens/<int:token_id>/revoke/", views.revoke_token, name="revoke_token"),
    path("settings/", views.settings_page, name="settings"),
]
