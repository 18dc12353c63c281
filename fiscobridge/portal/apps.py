from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "fiscobridge.portal"
    label = "portal"
