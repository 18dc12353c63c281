from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "fiscobridge.subscriptions"
    label = "subscriptions"
