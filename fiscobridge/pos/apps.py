from django.apps import AppConfig


class PosConfig(AppConfig):
    name = "fiscobridge.pos"
    label = "pos"
