from django.apps import AppConfig


class StaffConfig(AppConfig):
    name = "fiscobridge.staff"
