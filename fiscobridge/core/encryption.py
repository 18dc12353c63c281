"""Encryption at rest of small secrets (uploaded certificate files and their passwords).

Fernet (AES-128-CBC + HMAC-SHA256, authenticated, timestamped) under a key derived with
HKDF-SHA256 from `settings.ENCRYPTION_SECRET`, with the purpose as HKDF `info`: a token made
for one purpose ("certificate-file") never decrypts under another ("certificate-password"),
so a value copied from one column into another is refused rather than revealed.
"""

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from fiscobridge.core.errors import DecryptionError

_SALT = b"fiscobridge-encryption-v1"


@lru_cache(maxsize=32)
def _fernet(secret: str, purpose: str) -> Fernet:
    # Keyed by the secret itself so a changed setting (tests, a restart) never reuses a stale key.
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose.encode()).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _for(purpose: str) -> Fernet:
    if not purpose:
        raise ValueError("an encryption purpose is required")
    return _fernet(settings.ENCRYPTION_SECRET, purpose)


def encrypt(purpose: str, data: bytes) -> bytes:
    return _for(purpose).encrypt(bytes(data))


def decrypt(purpose: str, token: bytes) -> bytes:
    try:
        return _for(purpose).decrypt(bytes(token))
    except InvalidToken:
        raise DecryptionError(f"cannot decrypt a {purpose!r} token with the current secret") from None
