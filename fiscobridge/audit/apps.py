from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "fiscobridge.audit"
    label = "audit"
