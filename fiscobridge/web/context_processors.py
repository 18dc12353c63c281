"""Values every template may show. Limits that are settings reach the copy from here, never as
literals typed into a template."""

from django.conf import settings

from fiscobridge.core.text import size_text


def limits(request) -> dict:
    return {
        "limits": {
            "trial_connections": settings.TRIAL_CONNECTIONS,
            "trial_invoices_per_month": settings.TRIAL_INVOICES_PER_MONTH,
            "certificate_max_size": size_text(settings.CERTIFICATE_MAX_BYTES),
        }
    }
