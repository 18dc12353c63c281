"""Cloud POS certificates (SPEC 4.1, 5.2): PKCS#12 upload, seats, revoke, may-it-sign, tenancy.

Certificates are made at test time with `cryptography` (modern PBES2/AES-256 and legacy
SHA1-3DES) and with the `openssl` command line (legacy RC2-40, which cryptography cannot write).
"""

import logging
import os
import shutil
import subprocess
from collections import Counter
from datetime import datetime, timedelta

import pytest
import time_machine
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fiscobridge.audit.models import Event
from fiscobridge.core.encryption import decrypt, encrypt
from fiscobridge.core.errors import DecryptionError
from fiscobridge.keys.models import ActivationKey
from fiscobridge.keys.services import void_key
from fiscobridge.pos.entitlement import Entitlement, entitlement_of, entitlements_for_account
from fiscobridge.pos.errors import CertificateWithoutKey, InvalidCertificateFile, WrongCertificatePassword
from fiscobridge.pos.models import Certificate
from fiscobridge.pos.pkcs12 import parse_pkcs12
from fiscobridge.pos.queries import certificates_for_account
from fiscobridge.pos.services import FILE_PURPOSE, PASSWORD_PURPOSE, revoke_certificate, upload_certificate
from fiscobridge.subscriptions.errors import SeatLimitReached
from tests.factories import (
    CERTIFICATES,
    NOW,
    PFX_PASSWORD,
    bearer_client,
    grant,
    make_certificate,
    modern_encryption,
    new_pfx,
    outcome,
    run_at_once,
    to_pfx,
    upload_pfx,
)

URL = CERTIFICATES


# --- making certificates (make_certificate, to_pfx, new_pfx: tests/factories.py) -------------


def triple_des_encryption(password=PFX_PASSWORD):
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(password.encode())
    )


def rc2_pfx(tmp_path, certificate, key, password=PFX_PASSWORD) -> bytes:
    """A legacy file as old Windows exports make them: certificates RC2-40, key 3DES, SHA-1 MAC."""
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    cert_pem, key_pem, out = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "legacy.p12"
    cert_pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    subprocess.run(
        [
            openssl,
            "pkcs12",
            "-export",
            "-legacy",
            "-certpbe",
            "PBE-SHA1-RC2-40",
            "-keypbe",
            "PBE-SHA1-3DES",
            "-in",
            str(cert_pem),
            "-inkey",
            str(key_pem),
            "-out",
            str(out),
            "-passout",
            "env:PFX_PASSWORD",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PFX_PASSWORD": password},
    )
    info = subprocess.run(
        [openssl, "pkcs12", "-info", "-legacy", "-noout", "-in", str(out), "-passin", "env:PFX_PASSWORD"],
        capture_output=True,
        text=True,
        env={**os.environ, "PFX_PASSWORD": password},
    )
    assert "pbeWithSHA1And40BitRC2-CBC" in info.stdout + info.stderr  # really the legacy cipher
    return out.read_bytes()


# --- API helpers ---------------------------------------------------------------------------


def error_code(response) -> str:
    return response.json()["error"]["code"]


def void_subscription(subscription_id: int, staff) -> None:
    key = ActivationKey.objects.get(subscription__id=subscription_id)
    void_key(key=key, reason="chargeback", actor=staff.user)


def entitlement(persona, uid):
    response = persona.client.get(f"{URL}/{uid}/entitlement")
    assert response.status_code == 200, response.content
    return response.json()


def assert_nothing_stored(account):
    assert not Certificate.objects.filter(account=account).exists()
    assert not Event.objects.filter(action="certificate.uploaded").exists()


# --- parsing: every encryption, every field -------------------------------------------------


@pytest.mark.parametrize("flavour", ["modern-aes256", "best-available", "legacy-3des", "legacy-rc2-40"])
def test_upload_accepts_modern_and_legacy_pkcs12(customer, issue, tmp_path, flavour):
    grant(customer, issue)
    certificate, key = make_certificate()
    if flavour == "modern-aes256":
        data = to_pfx(certificate, key)
    elif flavour == "best-available":
        data = to_pfx(certificate, key, encryption=serialization.BestAvailableEncryption(PFX_PASSWORD.encode()))
    elif flavour == "legacy-3des":
        data = to_pfx(certificate, key, encryption=triple_des_encryption())
    else:
        data = rc2_pfx(tmp_path, certificate, key)
    response = upload_pfx(customer, data)
    assert response.status_code == 201, response.content
    assert response.json()["fingerprint"] == certificate.fingerprint(hashes.SHA256()).hex()


def test_upload_extracts_the_certificate_fields(customer, issue, tmp_path):
    grant(customer, issue)
    valid_until = (NOW + timedelta(days=400)).replace(microsecond=0)
    certificate, key = make_certificate(serial=0x0ABCDEF12345, valid_until=valid_until, rsa_key=True)
    response = upload_pfx(customer, to_pfx(certificate, key), name="Store 12.pfx")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {
        "uid",
        "taxpayer",
        "location",
        "pac",
        "serial",
        "fingerprint",
        "not_after",
        "status",
        "can_sign",
    }
    assert body["taxpayer"] == "Acme Retail SA"
    assert body["location"] == "Store 12"
    assert body["pac"] == "PAC-0042"
    assert body["serial"] == "0ABCDEF12345"  # uppercase hex, even length, as `openssl x509 -serial` prints it
    assert body["fingerprint"] == certificate.fingerprint(hashes.SHA256()).hex()
    assert datetime.fromisoformat(body["not_after"].replace("Z", "+00:00")) == valid_until
    assert body["status"] == "active" and body["can_sign"] is True
    assert body["uid"].startswith("C") and len(body["uid"]) == 11
    stored = Certificate.objects.get(uid=body["uid"])
    assert stored.account == customer.account and stored.uploaded_by == customer.user
    assert stored.file_name == "Store 12.pfx"
    assert stored.not_before == certificate.not_valid_before_utc
    event = Event.objects.get(action="certificate.uploaded")
    assert event.account == customer.account and event.actor == customer.user
    assert event.details["uid"] == body["uid"] and event.details["fingerprint"] == body["fingerprint"]


def test_serial_matches_what_openssl_prints(tmp_path):
    certificate, key = make_certificate()
    pem = tmp_path / "c.pem"
    pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    printed = subprocess.run(
        ["openssl", "x509", "-in", str(pem), "-noout", "-serial"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert parse_pkcs12(to_pfx(certificate, key), PFX_PASSWORD).serial == printed.removeprefix("serial=")


def test_taxpayer_and_location_fall_back_to_cn_and_locality_and_pac_may_be_absent():
    parsed = parse_pkcs12(new_pfx(org="", unit="", pac="", cn="Tienda Norte", locality="Saltillo"), PFX_PASSWORD)
    assert (parsed.taxpayer, parsed.location, parsed.pac) == ("Tienda Norte", "Saltillo", "")


def test_the_certificate_matching_the_key_is_read_even_behind_its_chain():
    ca_cert, _ = make_certificate(org="Some CA", unit="", pac="")
    certificate, key = make_certificate(org="Leaf Taxpayer")
    parsed = parse_pkcs12(to_pfx(certificate, key, cas=[ca_cert]), PFX_PASSWORD)
    assert parsed.taxpayer == "Leaf Taxpayer"
    assert parsed.fingerprint == certificate.fingerprint(hashes.SHA256()).hex()


def test_a_file_with_a_trailing_newline_still_parses():
    assert parse_pkcs12(new_pfx() + b"\r\n", PFX_PASSWORD).taxpayer == "Acme Retail SA"


def test_a_file_without_a_password_opens_with_an_empty_one(customer, issue):
    grant(customer, issue)
    certificate, key = make_certificate()
    data = pkcs12.serialize_key_and_certificates(b"pos", key, certificate, None, serialization.NoEncryption())
    assert upload_pfx(customer, data, password="").status_code == 201


# --- refusals: nothing stored on any of them ------------------------------------------------


def test_wrong_password_is_refused(customer, issue):
    grant(customer, issue)
    response = upload_pfx(customer, new_pfx(), password="not the password")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "wrong_certificate_password",
        "message": "The password does not open this certificate",
        "details": {},
    }
    assert_nothing_stored(customer.account)


def test_wrong_password_on_a_legacy_rc2_file_is_still_a_wrong_password(tmp_path):
    with pytest.raises(WrongCertificatePassword):
        parse_pkcs12(rc2_pfx(tmp_path, *make_certificate()), "nope")


def pem_text():
    certificate, key = make_certificate()
    return certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    "make_data",
    [
        pytest.param(lambda: os.urandom(4096), id="random-bytes"),
        pytest.param(pem_text, id="pem-text"),
        pytest.param(lambda: b"", id="empty"),
        pytest.param(lambda: new_pfx()[:-40], id="truncated-pfx"),
        pytest.param(lambda: b"0\x03\x02\x01\x03", id="header-only"),
    ],
)
def test_a_file_that_is_not_pkcs12_is_refused(customer, issue, make_data):
    grant(customer, issue)
    response = upload_pfx(customer, make_data())
    assert response.status_code == 400
    assert error_code(response) == "invalid_certificate_file"
    assert_nothing_stored(customer.account)


def test_a_missing_file_is_a_request_error(customer):
    response = customer.client.post(URL, {"password": PFX_PASSWORD})
    assert response.status_code == 422 and error_code(response) == "invalid_request"


@pytest.mark.parametrize("content", ["certificate-only", "key-only"])
def test_a_file_without_certificate_and_key_together_is_refused(customer, issue, content):
    grant(customer, issue)
    certificate, key = make_certificate()
    if content == "certificate-only":
        data = pkcs12.serialize_key_and_certificates(b"pos", None, certificate, None, modern_encryption())
    else:
        data = pkcs12.serialize_key_and_certificates(b"pos", key, None, None, modern_encryption())
    response = upload_pfx(customer, data)
    assert response.status_code == 400 and error_code(response) == "certificate_without_key"
    assert_nothing_stored(customer.account)


def test_a_certificate_whose_key_is_elsewhere_is_refused():
    ca_cert, _ = make_certificate(org="Some CA")
    with pytest.raises(CertificateWithoutKey):
        _, unrelated_key = make_certificate()
        parse_pkcs12(to_pfx(None, unrelated_key, cas=[ca_cert]), PFX_PASSWORD)


def test_an_expired_certificate_is_refused(customer, issue):
    grant(customer, issue)
    data = new_pfx(valid_from=NOW - timedelta(days=400), valid_until=NOW - timedelta(seconds=1))
    response = upload_pfx(customer, data)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "certificate_expired"
    assert response.json()["error"]["message"] == "This certificate has expired"
    assert_nothing_stored(customer.account)


def test_a_file_over_one_megabyte_is_refused_before_parsing(customer, issue):
    grant(customer, issue)
    response = upload_pfx(customer, new_pfx() + b"\0" * (1024 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "certificate_too_large"
    assert response.json()["error"]["message"] == "The file is larger than 1 MB"
    assert_nothing_stored(customer.account)


def test_a_file_of_exactly_the_limit_is_not_too_large(customer, issue, settings):
    grant(customer, issue)
    data = new_pfx()
    settings.CERTIFICATE_MAX_BYTES = len(data)
    assert upload_pfx(customer, data).status_code == 201
    response = upload_pfx(customer, data + b"\n")  # one byte over: refused by size, before any other check
    assert response.status_code == 413
    assert response.json()["error"]["details"] == {"max_bytes": len(data)}


def test_the_same_certificate_twice_is_a_duplicate_until_revoked(customer, issue):
    grant(customer, issue, seats=3)
    data = new_pfx()
    first = upload_pfx(customer, data)
    assert first.status_code == 201
    again = upload_pfx(customer, data)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate_certificate"
    assert again.json()["error"]["message"] == "This certificate is already uploaded"
    assert again.json()["error"]["details"] == {"uid": first.json()["uid"]}
    assert Certificate.objects.count() == 1 and Event.objects.filter(action="certificate.uploaded").count() == 1
    assert customer.client.post(f"{URL}/{first.json()['uid']}/revoke").status_code == 200
    reupload = upload_pfx(customer, data)
    assert reupload.status_code == 201
    assert reupload.json()["uid"] != first.json()["uid"]


def test_the_same_certificate_may_be_uploaded_by_two_accounts(customer, outsider, issue):
    grant(customer, issue)
    grant(outsider, issue)
    data = new_pfx()
    assert upload_pfx(customer, data).status_code == 201
    assert upload_pfx(outsider, data).status_code == 201


# --- storage: encrypted at rest, the password never logged ---------------------------------


def test_file_and_password_are_stored_encrypted(customer, issue):
    grant(customer, issue)
    data = new_pfx()
    uid = upload_pfx(customer, data).json()["uid"]
    row = Certificate.objects.filter(uid=uid).values().get()
    for value in row.values():
        raw = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
        assert data not in raw and data[:64] not in raw
        assert PFX_PASSWORD.encode() not in raw
    assert decrypt(FILE_PURPOSE, bytes(row["file_encrypted"])) == data
    assert decrypt(PASSWORD_PURPOSE, bytes(row["password_encrypted"])).decode() == PFX_PASSWORD
    # Purposes are separate keys: the password token does not open as a file, nor the reverse.
    with pytest.raises(DecryptionError):
        decrypt(FILE_PURPOSE, bytes(row["password_encrypted"]))


def test_encryption_depends_on_the_secret(settings):
    token = encrypt("certificate-file", b"payload")
    assert decrypt("certificate-file", token) == b"payload"
    settings.ENCRYPTION_SECRET = "another-secret-entirely"
    with pytest.raises(DecryptionError):
        decrypt("certificate-file", token)


def test_the_password_is_never_logged_nor_audited(customer, issue, caplog):
    grant(customer, issue, seats=2)
    caplog.set_level(logging.DEBUG)
    assert upload_pfx(customer, new_pfx()).status_code == 201
    assert upload_pfx(customer, new_pfx(), password="the-wrong-one-123").status_code == 400
    assert upload_pfx(customer, new_pfx()).status_code == 201
    assert upload_pfx(customer, new_pfx()).status_code == 409  # seat limit
    assert PFX_PASSWORD not in caplog.text and "the-wrong-one-123" not in caplog.text
    for event in Event.objects.all():
        assert PFX_PASSWORD not in str(event.details)


# --- seats ---------------------------------------------------------------------------------


def test_upload_without_a_subscription_reaches_the_seat_limit(customer):
    response = upload_pfx(customer, new_pfx())
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "seat_limit_reached"
    assert error["details"] == {"product": "pos", "seats_total": 0, "seats_used": 0}
    assert_nothing_stored(customer.account)


def test_two_seats_take_two_certificates_and_refuse_a_third(customer, issue):
    grant(customer, issue, seats=2)
    assert upload_pfx(customer, new_pfx()).status_code == 201
    assert upload_pfx(customer, new_pfx()).status_code == 201
    third = upload_pfx(customer, new_pfx())
    assert third.status_code == 409 and error_code(third) == "seat_limit_reached"
    assert Certificate.objects.count() == 2
    listing = customer.client.get(URL).json()
    assert (listing["seats_total"], listing["seats_used"]) == (2, 2)
    assert customer.client.get("/api/v1/subscriptions").json()["pos"]["seats_used"] == 2


def test_revoking_frees_the_seat_at_once_and_cannot_be_undone(customer, issue):
    grant(customer, issue, seats=1)
    uid = upload_pfx(customer, new_pfx()).json()["uid"]
    assert error_code(upload_pfx(customer, new_pfx())) == "seat_limit_reached"
    revoked = customer.client.post(f"{URL}/{uid}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked" and revoked.json()["can_sign"] is False
    assert upload_pfx(customer, new_pfx()).status_code == 201
    again = customer.client.post(f"{URL}/{uid}/revoke")
    assert again.status_code == 409 and error_code(again) == "certificate_already_revoked"
    certificate = Certificate.objects.get(uid=uid)
    assert certificate.status == "revoked" and certificate.revoked_at is not None
    assert Event.objects.filter(action="certificate.revoked").count() == 1
    assert Event.objects.get(action="certificate.revoked").actor == customer.user


def test_a_teammate_shares_the_account_certificates(customer, teammate, issue):
    grant(customer, issue)
    uid = upload_pfx(customer, new_pfx()).json()["uid"]
    assert [c["uid"] for c in teammate.client.get(URL).json()["items"]] == [uid]
    assert teammate.client.post(f"{URL}/{uid}/revoke").status_code == 200


# --- may it sign? --------------------------------------------------------------------------


def test_entitlement_ok_and_revoked(customer, issue):
    grant(customer, issue)
    uid = upload_pfx(customer, new_pfx()).json()["uid"]
    assert entitlement(customer, uid) == {"can_sign": True, "reason": "ok"}
    customer.client.post(f"{URL}/{uid}/revoke")
    assert entitlement(customer, uid) == {"can_sign": False, "reason": "revoked"}


def test_entitlement_after_not_after_is_certificate_expired(customer, issue):
    grant(customer, issue)
    valid_until = NOW + timedelta(days=10)
    uid = upload_pfx(customer, new_pfx(valid_until=valid_until)).json()["uid"]
    with time_machine.travel(valid_until - timedelta(seconds=1), tick=False):
        assert entitlement(customer, uid) == {"can_sign": True, "reason": "ok"}
    with time_machine.travel(valid_until, tick=False):
        assert entitlement(customer, uid) == {"can_sign": False, "reason": "certificate_expired"}
        item = customer.client.get(URL).json()["items"][0]
        assert item["status"] == "expired" and item["can_sign"] is False
        # Still active: it holds its seat until revoked.
        assert customer.client.get(URL).json()["seats_used"] == 1


def test_entitlement_without_an_active_subscription(customer, issue):
    grant(customer, issue, months=1)
    uid = upload_pfx(customer, new_pfx()).json()["uid"]
    with time_machine.travel(NOW + timedelta(days=32), tick=False):
        assert entitlement(customer, uid) == {"can_sign": False, "reason": "no_active_subscription"}
        listing = customer.client.get(URL).json()
        assert listing["seats_total"] == 0 and listing["seats_used"] == 1
        assert listing["items"][0]["status"] == "active"  # kept, with its history
        assert error_code(upload_pfx(customer, new_pfx())) == "seat_limit_reached"


def test_when_capacity_drops_the_last_uploaded_are_over_the_limit(customer, staff, issue):
    grant(customer, issue, seats=2)
    extra = grant(customer, issue, seats=1)
    uids = [upload_pfx(customer, new_pfx()).json()["uid"] for _ in range(3)]
    void_subscription(extra, staff)
    assert [entitlement(customer, uid)["reason"] for uid in uids] == ["ok", "ok", "over_seat_limit"]
    assert [item["can_sign"] for item in customer.client.get(URL).json()["items"]] == [True, True, False]
    blocked = upload_pfx(customer, new_pfx())
    assert blocked.status_code == 409 and error_code(blocked) == "seat_limit_reached"
    # Revoking one of the first two lets the third sign: order is by upload time among active ones.
    customer.client.post(f"{URL}/{uids[0]}/revoke")
    assert entitlement(customer, uids[2]) == {"can_sign": True, "reason": "ok"}


def test_an_expired_but_active_certificate_keeps_its_place_in_the_seat_order(customer, staff, issue):
    grant(customer, issue, seats=1)
    extra = grant(customer, issue, seats=1)
    expires_soon = NOW + timedelta(days=5)
    first = upload_pfx(customer, new_pfx(valid_until=expires_soon)).json()["uid"]
    second = upload_pfx(customer, new_pfx()).json()["uid"]
    void_subscription(extra, staff)
    with time_machine.travel(expires_soon + timedelta(days=1), tick=False):
        assert entitlement(customer, first)["reason"] == "certificate_expired"
        assert entitlement(customer, second)["reason"] == "over_seat_limit"
        customer.client.post(f"{URL}/{first}/revoke")
        assert entitlement(customer, second)["reason"] == "ok"


def test_entitlements_for_the_whole_account_agree_and_take_constant_queries(customer, staff, issue):
    grant(customer, issue, seats=3)
    extra = grant(customer, issue, seats=2)
    uids = [upload_pfx(customer, new_pfx()).json()["uid"] for _ in range(5)]
    revoke_certificate(certificate=Certificate.objects.get(uid=uids[1]), actor=customer.user)
    void_subscription(extra, staff)  # capacity 3 for 4 active certificates
    with CaptureQueriesContext(connection) as queries:
        rights = entitlements_for_account(customer.account)
    assert len(queries) == 2
    by_uid = {c.uid: rights[c.pk] for c in Certificate.objects.all()}
    assert [by_uid[uid].reason for uid in uids] == ["ok", "revoked", "ok", "ok", "over_seat_limit"]
    for certificate in Certificate.objects.all():
        assert entitlement_of(certificate) == rights[certificate.pk]
    assert rights[Certificate.objects.get(uid=uids[0]).pk] == Entitlement(can_sign=True, reason="ok")


# --- services called directly (as the portal pages do) -------------------------------------


def test_services_raise_domain_errors_and_store_nothing(customer, issue):
    with pytest.raises(SeatLimitReached):
        upload_certificate(account=customer.account, actor=customer.user, data=new_pfx(), password=PFX_PASSWORD)
    with pytest.raises(InvalidCertificateFile):
        upload_certificate(account=customer.account, actor=customer.user, data=b"", password=PFX_PASSWORD)
    assert_nothing_stored(customer.account)
    grant(customer, issue)
    certificate = upload_certificate(
        account=customer.account, actor=customer.user, data=new_pfx(), password=PFX_PASSWORD
    )
    assert certificate.pk and certificate.status == "active"


# --- list and filters ----------------------------------------------------------------------


def test_list_filters_by_taxpayer_location_and_status(customer, issue):
    grant(customer, issue, seats=5)
    north = upload_pfx(customer, new_pfx(org="Tiendas del Norte", unit="Saltillo Centro")).json()["uid"]
    south = upload_pfx(customer, new_pfx(org="Tiendas del Sur", unit="Oaxaca")).json()["uid"]
    soon = NOW + timedelta(days=3)
    expiring = upload_pfx(customer, new_pfx(org="Otra Empresa", unit="Saltillo Norte", valid_until=soon)).json()["uid"]
    customer.client.post(f"{URL}/{south}/revoke")

    def uids(**query):
        response = customer.client.get(URL, query)
        assert response.status_code == 200, response.content
        return [item["uid"] for item in response.json()["items"]]

    assert uids() == [north, south, expiring]
    assert uids(taxpayer="tiendas") == [north, south]
    assert uids(location="SALTILLO") == [north, expiring]
    assert uids(status="revoked") == [south]
    assert uids(status="active") == [north, expiring]
    with time_machine.travel(soon + timedelta(hours=1), tick=False):
        assert uids(status="expired") == [expiring]
        assert uids(status="active") == [north]
        assert [c.uid for c in certificates_for_account(customer.account, status="expired")] == [expiring]
    bad = customer.client.get(URL, {"status": "deleted"})
    assert bad.status_code == 422


# --- tenancy -------------------------------------------------------------------------------


def test_another_account_gets_404_and_sees_nothing(customer, outsider, issue):
    grant(customer, issue)
    grant(outsider, issue)
    uid = upload_pfx(customer, new_pfx()).json()["uid"]
    assert outsider.client.get(URL).json()["items"] == []
    for response in (outsider.client.post(f"{URL}/{uid}/revoke"), outsider.client.get(f"{URL}/{uid}/entitlement")):
        assert response.status_code == 404 and error_code(response) == "not_found"
    assert Certificate.objects.get(uid=uid).status == "active"
    assert customer.client.get(f"{URL}/CNOSUCHUID22/entitlement").status_code == 404


def test_partners_are_refused_with_403(customer, reseller, issue):
    grant(customer, issue)
    uid = upload_pfx(customer, new_pfx()).json()["uid"]
    responses = [
        reseller.client.get(URL),
        upload_pfx(reseller, new_pfx()),
        reseller.client.post(f"{URL}/{uid}/revoke"),
        reseller.client.get(f"{URL}/{uid}/entitlement"),
    ]
    assert [r.status_code for r in responses] == [403, 403, 403, 403]
    assert Certificate.objects.count() == 1


def test_anonymous_gets_401(customer, issue, anonymous):
    grant(customer, issue)
    uid = upload_pfx(customer, new_pfx()).json()["uid"]
    responses = [
        anonymous.get(URL),
        upload_pfx(anonymous, new_pfx()),
        anonymous.post(f"{URL}/{uid}/revoke"),
        anonymous.get(f"{URL}/{uid}/entitlement"),
    ]
    assert [r.status_code for r in responses] == [401, 401, 401, 401]
    assert error_code(responses[0]) == "unauthenticated"


def test_the_openapi_document_lists_the_certificate_routes(customer):
    paths = customer.client.get("/api/v1/openapi.json").json()["paths"]
    assert {
        "/api/v1/pos/certificates",
        "/api/v1/pos/certificates/{uid}/revoke",
        "/api/v1/pos/certificates/{uid}/entitlement",
    } <= set(paths)
    assert "multipart/form-data" in paths["/api/v1/pos/certificates"]["post"]["requestBody"]["content"]


# --- concurrency (PostgreSQL: real row locks) ----------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_uploads_into_k_free_seats_give_exactly_k_successes(customer, issue):
    grant(customer, issue, seats=4)
    assert upload_pfx(customer, new_pfx()).status_code == 201  # one seat in use: k = 3 free
    files = [new_pfx(org=f"Taxpayer {i}") for i in range(8)]
    clients = [bearer_client(customer.user) for _ in files]
    results = run_at_once([lambda c=c, d=d: upload_pfx(c, d) for c, d in zip(clients, files, strict=True)])
    outcomes = Counter(outcome(r) for r in results)
    assert outcomes == {(201, "ok"): 3, (409, "seat_limit_reached"): 5}, outcomes
    assert Certificate.objects.filter(account=customer.account, status="active").count() == 4
    assert Event.objects.filter(action="certificate.uploaded").count() == 4


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_uploads_of_one_file_store_it_once(customer, issue):
    grant(customer, issue, seats=10)
    data = new_pfx()
    clients = [bearer_client(customer.user) for _ in range(8)]
    outcomes = Counter(outcome(r) for r in run_at_once([lambda c=c: upload_pfx(c, data) for c in clients]))
    assert outcomes == {(201, "ok"): 1, (409, "duplicate_certificate"): 7}, outcomes
    assert Certificate.objects.count() == 1
