from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "fiscobridge.accounts"
    label = "accounts"

    def ready(self) -> None:
        # Login auditing observes Django's auth signals; it changes no business state.
        from fiscobridge.accounts import login_audit  # noqa: F401

        # The production guard rails (system checks) are registered by importing them.
        from fiscobridge.core import checks  # noqa: F401
