from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "fiscobridge.webhooks"
    label = "webhooks"
