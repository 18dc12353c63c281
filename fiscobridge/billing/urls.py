from django.urls import path

from fiscobridge.billing import views

urlpatterns = [
    path("webhook/", views.webhook, name="billing_webhook"),
]
