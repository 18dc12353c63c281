"""Encryption at rest of small secrets (uploaded certificate files and their passwords).

Fernet (AES-128-CBC + HMAC-SHA256, authenticated, timestamped) under a key derived with
HKDF-SHA256 from `settings.ENCRYPTION_SECRET`, with the purpose as HKDF `info`: a token made
for one purpose ("certificate-file") never decrypts under another ("certificate-password"),
so a value copied from one column into another is refused rather than revealed.

Key rotation: with the new secret in FISCOBRIDGE_ENCRYPTION_KEY and the previous one(s) in
FISCOBRIDGE_ENCRYPTION_OLD_KEYS, tokens of either decrypt (MultiFernet) and new ones use the new
secret; `fiscobridge rotate-encryption-key` then re-encrypts every stored token (`reencrypt`),
after which the old secret can be dropped (docs/operations.md).
"""

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
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


def _for(purpose: str) -> MultiFernet:
    """The current secret's key first (it encrypts), then the old ones (they only decrypt)."""
    if not purpose:
        raise ValueError("an encryption purpose is required")
    secrets = [settings.ENCRYPTION_SECRET, *settings.ENCRYPTION_OLD_SECRETS]
    return MultiFernet([_fernet(secret, purpose) for secret in secrets])


def encrypt(purpose: str, data: bytes) -> bytes:
    return _for(purpose).encrypt(bytes(data))


def decrypt(purpose: str, token: bytes) -> bytes:
    try:
        return _for(purpose).decrypt(bytes(token))
    except InvalidToken:
        raise DecryptionError(f"cannot decrypt a {purpose!r} token with the current secret") from None


def reencrypt(purpose: str, token: bytes) -> bytes:
    """The same plaintext under the current secret (raises DecryptionError when no secret opens it)."""
    try:
        return _for(purpose).rotate(bytes(token))
    except InvalidToken:
        raise DecryptionError(f"cannot decrypt a {purpose!r} token with the current or old secrets") from None
