from django.apps import AppConfig


class PartnersConfig(AppConfig):
    name = "fiscobridge.partners"
    label = "partners"
    verbose_name = "Partner Portal"
