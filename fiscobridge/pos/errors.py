"""Errors of Cloud POS certificates (SPEC 4.1): one class per failure, a stable code."""

from django.conf import settings

from fiscobridge.core.errors import Conflict, DomainError, NotFound
from fiscobridge.core.text import size_text


class InvalidCertificateFile(DomainError):
    """Empty, or not a PKCS#12 structure at all (a PEM file, a picture, random bytes)."""

    code = "invalid_certificate_file"
    message = "This file is not a PKCS#12 certificate (.pfx or .p12)"
    http_status = 400


class WrongCertificatePassword(DomainError):
    """A PKCS#12 structure that this password does not open."""

    code = "wrong_certificate_password"
    message = "The password does not open this certificate"
    http_status = 400


class CertificateWithoutKey(DomainError):
    code = "certificate_without_key"
    message = "The file must hold the certificate together with its private key"
    http_status = 400


class CertificateTooCostly(DomainError):
    """A file that asks for more key-derivation rounds, or more time to open, than we give it."""

    code = "certificate_too_costly"
    http_status = 400

    def __init__(self, *, max_iterations: int | None = None):
        if max_iterations is None:
            super().__init__(
                "This certificate file takes too long to open. Export it again with your tool's usual settings",
                details={"max_seconds": settings.CERTIFICATE_PARSE_SECONDS},
            )
        else:
            super().__init__(
                f"This certificate file asks for more than {max_iterations:,} password rounds. "
                "Export it again with your tool's usual settings",
                details={"max_iterations": max_iterations},
            )


class CertificateExpired(DomainError):
    code = "certificate_expired"
    message = "This certificate has expired"
    http_status = 400


class DuplicateCertificate(Conflict):
    code = "duplicate_certificate"
    message = "This certificate is already uploaded"


class CertificateTooLarge(DomainError):
    code = "certificate_too_large"
    http_status = 413

    def __init__(self, *, limit: int | None = None):
        limit = settings.CERTIFICATE_MAX_BYTES if limit is None else limit
        super().__init__(f"The file is larger than {size_text(limit)}", details={"max_bytes": limit})


class CertificateAlreadyRevoked(Conflict):
    code = "certificate_already_revoked"
    message = "This certificate is already revoked"


class CertificateNotFound(NotFound):
    message = "No such certificate"
