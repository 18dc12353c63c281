"""Audit portal logins and failed logins (SPEC 7)."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from fiscobridge.audit.services import record_event
from fiscobridge.core.net import client_ip

# axes' AccessAttempt.username column, and the longest e-mail address there is.
USERNAME_MAX = 254


def attempted_username(request, credentials=None) -> str:
    """The e-mail a login attempt typed, as axes and the audit store it (AXES_USERNAME_CALLABLE)."""
    source = credentials if credentials else getattr(request, "POST", {})
    typed = str(source.get("username", "") or "")
    return "".join(ch for ch in typed if ch.isprintable())[:USERNAME_MAX]


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    record_event(
        action="login.succeeded",
        actor=user,
        account=user.account,
        partner=user.partner,
        target=user,
        ip=client_ip(request) if request else None,
    )


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    # The attempted e-mail is personal data but not a secret; the password never is recorded.
    record_event(
        action="login.failed",
        ip=client_ip(request) if request else None,
        details={"email": attempted_username(request, credentials)},
    )


@receiver(user_locked_out)
def _locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    record_event(
        action="login.locked_out",
        ip=ip_address or (client_ip(request) if request else None),
        details={"email": str(username or "")[:254]},
    )
