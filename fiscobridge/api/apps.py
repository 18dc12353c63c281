from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The HTTP API. An app only for its one table: the kept answers of idempotent requests."""

    name = "fiscobridge.api"
    label = "api"
