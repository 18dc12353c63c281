from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "fiscobridge.keys"
    label = "keys"
