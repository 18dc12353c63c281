"""Changes of state of Cloud POS certificates: upload (spends a seat) and revoke (frees it)."""

import os
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction

from fiscobridge.accounts.locks import lock_account
from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.core.bounded import TimeLimitExceeded, call_with_time_limit
from fiscobridge.core.encryption import encrypt, reencrypt
from fiscobridge.core.ids import new_uid
from fiscobridge.pos.errors import (
    CertificateAlreadyRevoked,
    CertificateExpired,
    CertificateTooCostly,
    CertificateTooLarge,
    DuplicateCertificate,
    InvalidCertificateFile,
)
from fiscobridge.pos.models import Certificate, CertificateStatus
from fiscobridge.pos.pkcs12 import ParsedCertificate, parse_pkcs12, pfx_extent
from fiscobridge.pos.usage import active_certificate_count
from fiscobridge.subscriptions.capacity import pos_capacity
from fiscobridge.subscriptions.errors import SeatLimitReached

FILE_PURPOSE = "certificate-file"
PASSWORD_PURPOSE = "certificate-password"

UID_PREFIX = "C"
UID_ATTEMPTS = 5


def _clean_file_name(name: str) -> str:
    name = os.path.basename((name or "").replace("\\", "/"))
    return "".join(ch for ch in name if ch.isprintable())[:255]


def read_certificate_upload(uploaded) -> bytes:
    """An uploaded file's bytes, one byte past the size limit at most: enough for
    `upload_certificate` to answer certificate_too_large without reading a large body."""
    return uploaded.read(settings.CERTIFICATE_MAX_BYTES + 1)


def upload_certificate(*, account, actor, data: bytes, password: str, ip=None, file_name: str = "") -> Certificate:
    """Store a PKCS#12 certificate for `account`, spending one Cloud POS seat.

    Checks, in order: size, the outer PKCS#12 header, a free seat, parse with the password (at most
    CERTIFICATE_MAX_KDF_ITERATIONS rounds per key derivation, CERTIFICATE_PARSE_SECONDS of CPU),
    not past notAfter; then, under the account lock: not a duplicate of an active certificate,
    a free seat again. Nothing is stored when any
    check fails. The file and the password are kept encrypted; the password is never logged
    nor audited.
    """
    data = bytes(data or b"")
    limit = settings.CERTIFICATE_MAX_BYTES
    if len(data) > limit:
        raise CertificateTooLarge(limit=limit)
    password = password or ""
    if pfx_extent(data) is None:  # costs nothing: tells a wrong file at once, seats or not
        raise InvalidCertificateFile()
    # The seat check comes before parsing too (and again under the lock): an account without a
    # free seat cannot make the server open files for it.
    _check_free_seat(account, clock.now())
    parsed = _parse_bounded(data, password)
    if clock.now() >= parsed.not_after:
        raise CertificateExpired(details={"not_after": parsed.not_after.isoformat()})
    # Encrypt before taking the lock: the lock is held only for the checks and the insert.
    file_token = encrypt(FILE_PURPOSE, data)
    password_token = encrypt(PASSWORD_PURPOSE, password.encode("utf-8"))
    with transaction.atomic():
        certificate = _store(
            account=account,
            actor=actor,
            parsed=parsed,
            file_token=file_token,
            password_token=password_token,
            file_name=_clean_file_name(file_name),
        )
        record_event(
            action="certificate.uploaded",
            actor=actor,
            account=account,
            target=certificate,
            ip=ip,
            details={
                "uid": certificate.uid,
                "fingerprint": parsed.fingerprint,
                "serial": parsed.serial,
                "taxpayer": parsed.taxpayer,
                "not_after": parsed.not_after.isoformat(),
                "file_name": certificate.file_name,
            },
        )
    return certificate


def _check_free_seat(account, moment) -> None:
    used = active_certificate_count(account)
    capacity = pos_capacity(account, moment)
    if used >= capacity:
        raise SeatLimitReached(details={"product": "pos", "seats_total": capacity, "seats_used": used})


def _parse_bounded(data: bytes, password: str) -> ParsedCertificate:
    """parse_pkcs12 with the iteration limit and a hard time bound (core.bounded)."""
    seconds = settings.CERTIFICATE_PARSE_SECONDS
    try:
        return call_with_time_limit(
            partial(parse_pkcs12, max_iterations=settings.CERTIFICATE_MAX_KDF_ITERATIONS),
            data,
            password,
            cpu_seconds=seconds,
            wall_seconds=2 * seconds,
        )
    except TimeLimitExceeded:
        raise CertificateTooCostly() from None


def _active_duplicate(account, fingerprint: str) -> Certificate | None:
    return Certificate.objects.for_account(account).active().filter(fingerprint=fingerprint).only("uid").first()


def _store(*, account, actor, parsed: ParsedCertificate, file_token: bytes, password_token: bytes, file_name: str):
    # The account row lock comes first (accounts.locks): parallel uploads of one account queue
    # here, so each sees the count its predecessor left and k free seats admit exactly k.
    lock_account(account)
    duplicate = _active_duplicate(account, parsed.fingerprint)
    if duplicate is not None:
        raise DuplicateCertificate(details={"uid": duplicate.uid})
    moment = clock.now()
    _check_free_seat(account, moment)
    for attempt in range(UID_ATTEMPTS):
        try:
            with transaction.atomic():
                return Certificate.objects.create(
                    account=account,
                    uid=new_uid(UID_PREFIX),
                    taxpayer=parsed.taxpayer,
                    location=parsed.location,
                    pac=parsed.pac,
                    serial=parsed.serial,
                    fingerprint=parsed.fingerprint,
                    not_before=parsed.not_before,
                    not_after=parsed.not_after,
                    status=CertificateStatus.ACTIVE,
                    uploaded_at=moment,
                    file_encrypted=file_token,
                    password_encrypted=password_token,
                    file_name=file_name,
                    uploaded_by=actor if getattr(actor, "pk", None) else None,
                )
        except IntegrityError:
            # The partial unique index on (account, fingerprint) backs the check above; otherwise
            # the random UID collided, and another one is drawn.
            duplicate = _active_duplicate(account, parsed.fingerprint)
            if duplicate is not None:
                raise DuplicateCertificate(details={"uid": duplicate.uid}) from None
            if attempt == UID_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def revoke_certificate(*, certificate: Certificate, actor, ip=None) -> Certificate:
    """Revoke for good: the seat is free at once; a revoked certificate never becomes active again.

    The caller has already checked that `actor` may see the certificate.
    """
    moment = clock.now()
    # One conditional UPDATE: of two concurrent revokes, exactly one changes the row.
    changed = Certificate.objects.filter(pk=certificate.pk, status=CertificateStatus.ACTIVE).update(
        status=CertificateStatus.REVOKED, revoked_at=moment
    )
    certificate.refresh_from_db(fields=["status", "revoked_at"])
    if not changed:
        raise CertificateAlreadyRevoked()
    record_event(
        action="certificate.revoked",
        actor=actor,
        account=certificate.account,
        target=certificate,
        ip=ip,
        details={"uid": certificate.uid, "fingerprint": certificate.fingerprint},
    )
    return certificate


def reencrypt_certificates(*, chunk: int = 500) -> int:
    """Every stored certificate file and password re-encrypted under the current secret (key
    rotation, `fiscobridge rotate-encryption-key`). Row by row, each in its own short update;
    safe to run again (a token already under the current secret is re-encrypted the same way)."""
    done, last = 0, 0
    while True:
        page = Certificate.objects.filter(pk__gt=last).order_by("pk")
        rows = list(page.values_list("pk", "file_encrypted", "password_encrypted")[:chunk])
        if not rows:
            return done
        for pk, file_token, password_token in rows:
            Certificate.objects.filter(pk=pk).update(
                file_encrypted=reencrypt(FILE_PURPOSE, file_token),
                password_encrypted=reencrypt(PASSWORD_PURPOSE, password_token),
            )
            done += 1
        last = rows[-1][0]
