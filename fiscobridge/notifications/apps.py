from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "fiscobridge.notifications"
    label = "notifications"
