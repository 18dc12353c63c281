"""E-mailing a freshly issued single key to the partner's customer.

The plain code exists only in this call's arguments and in the message handed to the mail
backend: it is not stored, not logged and not put in the audit event.
"""

import logging

from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.views.decorators.debug import sensitive_variables

from fiscobridge.audit.services import record_event
from fiscobridge.keys.errors import PRODUCT_NAMES

logger = logging.getLogger(__name__)


@sensitive_variables("code", "body")
def email_key_to_customer(*, key, code: str, to: str, partner, actor, ip=None) -> bool:
    """Send `code` to `to` once, after the issuance has committed. True when the backend accepted it.

    A failure is audited and logged (without the code) and reported to the caller; the key
    stays issued, and the partner still sees the code on the page to pass on another way.
    """
    context = {"code": code, "key": key, "partner": partner, "product": PRODUCT_NAMES[key.product]}
    subject = f"Your FiscoBridge {context['product']} activation key from {partner.name}"
    body = render_to_string("partners/email/key_to_customer.txt", context)
    try:
        send_mail(subject, body, None, [to], fail_silently=False)
    except Exception as error:
        # Only the exception's type: some SMTP errors echo the message, which holds the code.
        logger.warning("e-mailing key %s to a customer failed: %s", key.pk, type(error).__name__)
        record_event(
            action="key.email_failed",
            actor=actor,
            partner=partner,
            target=key,
            ip=ip,
            details={"to": to, "error": type(error).__name__},
        )
        return False
    record_event(action="key.emailed", actor=actor, partner=partner, target=key, ip=ip, details={"to": to})
    return True
