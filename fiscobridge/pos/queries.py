"""Reading an account's certificates — always from the account first, so another tenant's is 404."""

from django.db.models import QuerySet

from fiscobridge.core.errors import InvalidInput
from fiscobridge.core.ids import is_uid
from fiscobridge.core.text import clean_text
from fiscobridge.pos.errors import CertificateNotFound
from fiscobridge.pos.models import Certificate, CertificateDisplayStatus

# Lists and look-ups never need the encrypted file and password; load them only on access.
_SECRETS = ("file_encrypted", "password_encrypted")


def get_certificate_for_account(account, uid: str) -> Certificate:
    """The account's own certificate, or CertificateNotFound (404) — also for another account's UID."""
    uid = str(uid)
    if not is_uid(uid):
        raise CertificateNotFound()
    certificate = Certificate.objects.for_account(account).defer(*_SECRETS).filter(uid=uid).first()
    if certificate is None:
        raise CertificateNotFound()
    return certificate


def certificates_for_account(account, *, taxpayer=None, location=None, status=None) -> QuerySet[Certificate]:
    """The account's certificates in upload order (the seat order), filtered like the POS Manager table.

    `taxpayer` and `location` match case-insensitive substrings; `status` is a display status:
    `active` (and not expired), `revoked`, or `expired` (active but past notAfter).
    """
    certificates = Certificate.objects.for_account(account).defer(*_SECRETS)
    # Checked like every other free text: a NUL reached PostgreSQL and failed there (a 500 found
    # by the API fuzz test, issue 10).
    if taxpayer:
        certificates = certificates.filter(taxpayer__icontains=clean_text(taxpayer, field="taxpayer", max_length=200))
    if location:
        certificates = certificates.filter(location__icontains=clean_text(location, field="location", max_length=200))
    if status:
        if status not in CertificateDisplayStatus.values:
            statuses = ", ".join(CertificateDisplayStatus.values)
            raise InvalidInput.for_field("status", f"Status must be one of: {statuses}")
        certificates = certificates.with_display_status(status)
    return certificates.in_seat_order()
