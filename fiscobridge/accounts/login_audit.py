"""Audit portal logins and failed logins (SPEC 7)."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from fiscobridge.audit.services import record_event
from fiscobridge.core.net import client_ip


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
        details={"email": str(credentials.get("username", ""))[:254]},
    )


@receiver(user_locked_out)
def _locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    record_event(
        action="login.locked_out",
        ip=ip_address or (client_ip(request) if request else None),
        details={"email": str(username or "")[:254]},
    )
