from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "fiscobridge.integrations"
    label = "integrations"
