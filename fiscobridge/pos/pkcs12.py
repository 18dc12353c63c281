"""Reading a PKCS#12 file (`.pfx`/`.p12`): pure functions, no database, no settings.

cryptography's bundled OpenSSL loads the legacy provider, so files encrypted with modern
PBES2 (PBKDF2 + AES-256) and legacy PBES1 (SHA1 + 3DES, SHA1 + RC2-40) all open. OpenSSL
answers ValueError both for "not PKCS#12" and for "wrong password"; a minimal DER check of the
outer PFX structure tells them apart, so a user who picked the wrong file is not told to retype
the password.

Opening a file costs what the file asks for: every password-based key derivation in it (the MAC,
each encrypted part) runs as many rounds as the file says. `kdf_iterations` reads those counts
(asn1crypto; no decryption) so that a file asking for millions of rounds is refused before
OpenSSL derives anything. Counts inside an encrypted part are visible only after decrypting
it: the caller bounds the parsing time as well (pos/services.py).
"""

from dataclasses import dataclass
from datetime import datetime

from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from fiscobridge.pos.errors import (
    CertificateTooCostly,
    CertificateWithoutKey,
    InvalidCertificateFile,
    WrongCertificatePassword,
)

# Lengths of the Certificate columns: longer subject values are cut, never rejected.
TAXPAYER_MAX, LOCATION_MAX, PAC_MAX, SERIAL_MAX = 300, 300, 200, 100


@dataclass(frozen=True)
class ParsedCertificate:
    taxpayer: str  # subject O, else CN
    location: str  # subject OU, else L
    pac: str  # subject serialNumber attribute, or ""
    serial: str  # the certificate's serial number, uppercase hex (even length, as OpenSSL prints it)
    fingerprint: str  # SHA-256 of the DER certificate, lowercase hex
    not_before: datetime  # aware, UTC
    not_after: datetime  # aware, UTC


def pfx_extent(data: bytes) -> int | None:
    """The length of the PFX at the start of `data`, or None when it is not one.

    Reads only the outer header of `PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo,
    … }` (DER, or BER with an indefinite length): enough to tell a PKCS#12 file from a PEM file,
    a picture or random bytes, without parsing ASN.1 ourselves. Trailing bytes after a definite
    length (a newline added by a mail client) are not part of the PFX.
    """
    if len(data) < 8 or data[0] != 0x30:
        return None
    first = data[1]
    if first == 0x80:  # BER indefinite length: some older Windows and Java exports
        start, end = 2, len(data)
    elif first < 0x80:
        start, end = 2, 2 + first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count:
            return None
        start = 2 + count
        end = start + int.from_bytes(data[2:start], "big")
    if end > len(data):  # truncated
        return None
    if data[start : start + 3] != b"\x02\x01\x03" or data[start + 3 : start + 4] != b"\x30":
        return None
    return end


def kdf_iterations(data: bytes) -> list[int]:
    """The key-derivation round counts a PFX asks for before anything in it is decrypted.

    The MAC's count, each encrypted part's, and each shrouded private key's in the unencrypted
    parts. A structure asn1crypto cannot read gives what was read until then: OpenSSL will
    most likely refuse it too, and the caller's time bound covers the rest.
    """
    counts: list[int] = []
    try:
        pfx = asn1_pkcs12.Pfx.load(data)
        mac = pfx["mac_data"]
        if mac.native is not None:
            counts.append(int(mac["iterations"].native))
        for part in pfx.authenticated_safe:
            kind = part["content_type"].native
            if kind == "encrypted_data":
                algorithm = part["content"]["encrypted_content_info"]["content_encryption_algorithm"]
                counts.append(int(algorithm.kdf_iterations))
            elif kind == "data":
                for bag in asn1_pkcs12.SafeContents.load(part["content"].native):
                    if bag["bag_id"].native == "pkcs8_shrouded_key_bag":
                        counts.append(int(bag["bag_value"]["encryption_algorithm"].kdf_iterations))
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    return counts


def parse_pkcs12(data: bytes, password: str, *, max_iterations: int | None = None) -> ParsedCertificate:
    """Open a PKCS#12 file with its password and read the certificate that matches its private key.

    Raises InvalidCertificateFile (empty, not PKCS#12), CertificateTooCostly (a key derivation
    of more than `max_iterations` rounds), WrongCertificatePassword or CertificateWithoutKey.
    Expiry is the caller's rule, not a parsing failure.
    """
    data = bytes(data or b"")
    extent = pfx_extent(data)
    if extent is None:
        raise InvalidCertificateFile()
    data = data[:extent]
    if max_iterations is not None and any(count > max_iterations for count in kdf_iterations(data)):
        raise CertificateTooCostly(max_iterations=max_iterations)
    if "\x00" in (password or ""):  # OpenSSL takes the password as a C string: it cannot be this one
        raise WrongCertificatePassword()
    try:
        loaded = pkcs12.load_pkcs12(data, (password or "").encode("utf-8"))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The structure is PKCS#12, so the likely cause is the password (a MAC or decryption failure).
        raise WrongCertificatePassword() from None
    certificate = _certificate_of_key(loaded)
    try:
        return _describe(certificate)
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidCertificateFile() from None


def _public_der(key) -> bytes | None:
    try:
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def _certificate_of_key(loaded: pkcs12.PKCS12KeyAndCertificates) -> x509.Certificate:
    """The certificate whose public key is the file's private key (a file may also carry its CA chain)."""
    if loaded.key is None:
        raise CertificateWithoutKey()
    wanted = _public_der(loaded.key.public_key())
    candidates = ([loaded.cert] if loaded.cert is not None else []) + list(loaded.additional_certs)
    for candidate in candidates:
        certificate = candidate.certificate
        try:
            public = _public_der(certificate.public_key())
        except (ValueError, UnsupportedAlgorithm):
            continue
        if wanted is not None and public == wanted:
            return certificate
    raise CertificateWithoutKey()


def _first(name: x509.Name, oid) -> str:
    for attribute in name.get_attributes_for_oid(oid):
        value = attribute.value
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        value = " ".join("".join(ch if ch.isprintable() else " " for ch in str(value)).split())
        if value:
            return value
    return ""


def _serial_hex(number: int) -> str:
    sign, number = ("-", -number) if number < 0 else ("", number)
    text = format(number, "X")
    return sign + ("0" * (len(text) % 2)) + text


def _describe(certificate: x509.Certificate) -> ParsedCertificate:
    subject = certificate.subject
    serial = _serial_hex(certificate.serial_number)
    if len(serial) > SERIAL_MAX:
        raise InvalidCertificateFile()
    return ParsedCertificate(
        taxpayer=(_first(subject, NameOID.ORGANIZATION_NAME) or _first(subject, NameOID.COMMON_NAME))[:TAXPAYER_MAX],
        location=(_first(subject, NameOID.ORGANIZATIONAL_UNIT_NAME) or _first(subject, NameOID.LOCALITY_NAME))[
            :LOCATION_MAX
        ],
        pac=_first(subject, NameOID.SERIAL_NUMBER)[:PAC_MAX],
        serial=serial,
        fingerprint=certificate.fingerprint(hashes.SHA256()).hex(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
    )
