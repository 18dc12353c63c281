from django.conf import settings
from ninja import File, Form, Query, Router
from ninja.files import UploadedFile
from ninja.responses import Status

from fiscobridge.accounts.scopes import Scope
from fiscobridge.api.answers import json_answer
from fiscobridge.api.auth import customer_account, scoped
from fiscobridge.api.presenters import certificate_dict, entitlement_dict, lease_dict
from fiscobridge.api.schemas import (
    CertificateFilters,
    CertificateListOut,
    CertificateOut,
    EntitlementOut,
    ErrorOut,
    LeaseOut,
)
from fiscobridge.core.net import client_ip
from fiscobridge.core.text import size_text
from fiscobridge.leases.services import issue_lease
from fiscobridge.pos.entitlement import entitlement_by_uid, entitlement_of, entitlements_for_account
from fiscobridge.pos.queries import (
    certificates_for_account,
    get_certificate_for_account,
)
from fiscobridge.pos.services import read_certificate_upload, revoke_certificate, upload_certificate
from fiscobridge.seats import pos_seats

router = Router(tags=["Cloud POS certificates"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 413: ErrorOut, 422: ErrorOut}


def _with_entitlement(certificate) -> dict:
    return certificate_dict(certificate, can_sign=entitlement_of(certificate).can_sign)


@router.get("", auth=scoped(Scope.POS_CERTIFICATES, Scope.READ), response={200: CertificateListOut, **ERRORS})
def list_certificates(request, filters: Query[CertificateFilters]):
    """Your certificates in upload order (the seat order), with the seats of your Cloud POS subscriptions."""
    account = customer_account(request)
    certificates = certificates_for_account(
        account, taxpayer=filters.taxpayer, location=filters.location, status=filters.status
    )
    rights = entitlements_for_account(account)
    seats = pos_seats(account)
    return {
        "seats_total": seats.total,
        "seats_used": seats.used,
        "items": [certificate_dict(c, can_sign=rights[c.pk].can_sign) for c in certificates],
    }


@router.post(
    "",
    auth=scoped(Scope.POS_CERTIFICATES),
    response={201: CertificateOut, **ERRORS},
    summary="Upload",
    description=(
        f"Upload a PKCS#12 file (`.pfx`/`.p12`, at most {size_text(settings.CERTIFICATE_MAX_BYTES)}) with its"
        " password; it takes one seat.\n\nThe file and the password are stored encrypted; the password is never"
        " logged."
    ),
)
def upload(request, file: File[UploadedFile], password: Form[str] = ""):
    # Django's error reports never show the password, even for a failure we did not foresee.
    request.sensitive_post_parameters = ["password"]
    account = customer_account(request)
    certificate = upload_certificate(
        account=account,
        actor=request.user,
        data=read_certificate_upload(file),
        password=password,
        ip=client_ip(request),
        file_name=file.name or "",
    )
    return Status(201, _with_entitlement(certificate))


@router.post("/{uid}/revoke", auth=scoped(Scope.POS_CERTIFICATES), response={200: CertificateOut, **ERRORS})
def revoke(request, uid: str):
    """Revoke a certificate: its seat is free at once. This cannot be undone."""
    certificate = get_certificate_for_account(customer_account(request), uid)
    certificate = revoke_certificate(certificate=certificate, actor=request.user, ip=client_ip(request))
    return _with_entitlement(certificate)


@router.get(
    "/{uid}/entitlement", auth=scoped(Scope.POS_ENTITLEMENT, Scope.READ), response={200: EntitlementOut, **ERRORS}
)
def entitlement(request, uid: str):
    """May this certificate sign now? `reason` says why not."""
    return json_answer(entitlement_dict(entitlement_by_uid(customer_account(request).pk, uid)))


@router.post(
    "/{uid}/lease",
    # Not `read`: a lease is what a device signs on, so only the device's own scope mints one.
    auth=scoped(Scope.POS_ENTITLEMENT),
    response={200: LeaseOut, **ERRORS},
    summary="Offline lease",
    description=(
        "A signed answer to *may this certificate sign?* that a POS device keeps and checks offline"
        " (docs/leases.md): a compact JWT (EdDSA, Ed25519) with `sub` (the UID), `fpr` (the SHA-256"
        " fingerprint), `can_sign` and `reason` (as the entitlement), valid until `expires_at`: at most"
        " LEASE_HOURS, never past the certificate's notAfter or the moment its seat would lapse; one hour"
        " when it says no. Check it with the keys of `GET /.well-known/jwks.json`."
    ),
)
def lease(request, uid: str):
    issued = issue_lease(account=customer_account(request), uid=uid, actor=request.user, ip=client_ip(request))
    return json_answer(lease_dict(issued))
