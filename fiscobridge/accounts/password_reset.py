"""Password reset without a signal to attackers (issue 10.6).

- Throttled per client IP and per e-mail address (PASSWORD_RESET_PER_IP_PER_HOUR,
  PASSWORD_RESET_PER_EMAIL_PER_HOUR): counted in hourly rows, the e-mail as a keyed hash.
- Constant work: the request only counts and enqueues one task, whether the address belongs to
  a user or not; the worker looks the user up and sends the link (or nothing). The answer and
  its time are the same for both.
- The link is built from PUBLIC_BASE_URL, never from the request's Host header.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.db import IntegrityError, transaction
from django.db.models import F
from django_tasks import task

from fiscobridge.accounts.models import PasswordResetCounter
from fiscobridge.core import clock
from fiscobridge.core.crypto import keyed_hash
from fiscobridge.tasks.queue import enqueue_with_transaction, retrying

EMAIL_PURPOSE = "password-reset-email"
KEEP_HOURS = 24


def _count(scope: str, key: str, hour: int) -> int:
    """This request counted on the (scope, key, hour) row; the row's count after it."""
    rows = PasswordResetCounter.objects.filter(scope=scope, key=key, hour=hour)
    if not rows.update(count=F("count") + 1):
        try:
            with transaction.atomic():
                PasswordResetCounter.objects.create(scope=scope, key=key, hour=hour, count=1)
                PasswordResetCounter.objects.filter(hour__lt=hour - KEEP_HOURS).delete()
                return 1
        except IntegrityError:  # another request created it first
            rows.update(count=F("count") + 1)
    return rows.values_list("count", flat=True).get()


def request_password_reset(*, email: str, ip: str) -> bool:
    """Count the request; when within both limits, enqueue the e-mail. False: throttled."""
    hour = int(clock.now().timestamp() // 3600)
    email = (email or "").strip().lower()[:254]
    by_ip = _count("ip", ip[:64], hour)
    by_email = _count("email", keyed_hash(EMAIL_PURPOSE, email), hour)
    if by_ip > settings.PASSWORD_RESET_PER_IP_PER_HOUR or by_email > settings.PASSWORD_RESET_PER_EMAIL_PER_HOUR:
        return False
    with transaction.atomic():
        enqueue_with_transaction(send_password_reset, email)
    return True


@task(takes_context=True)
@retrying(backoff=(10, 60, 300))
def send_password_reset(context, email: str) -> dict:
    """The reset link to each active user with this e-mail (Django's form and templates); none
    when there is no such user. Runs in the worker."""
    form = PasswordResetForm({"email": email})
    if not form.is_valid():
        return {"sent": 0}
    base = urlsplit(settings.PUBLIC_BASE_URL)
    users = list(form.get_users(email))
    form.save(
        domain_override=base.netloc,
        use_https=base.scheme == "https",
        email_template_name="registration/password_reset_email.html",
        subject_template_name="registration/password_reset_subject.txt",
    )
    return {"sent": len(users)}
