from django.apps import AppConfig


class LeasesConfig(AppConfig):
    name = "fiscobridge.leases"
    label = "leases"
    verbose_name = "Offline leases"
