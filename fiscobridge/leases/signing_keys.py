"""The Ed25519 keys that sign offline leases: created on first need, rotated by
`fiscobridge rotate-signing-key`, published as a JWKS (`GET /.well-known/jwks.json`).

The current key is cached in each process for LEASE_KEY_CACHE_SECONDS: the lease endpoint is a
hot path and would otherwise read and decrypt the key on every request. The price is that
another process may sign with a key retired less than that long ago, so a retired key stays
published for LEASE_HOURS + LEASE_KEY_CACHE_SECONDS + the devices' clock skew after its
retirement: every lease it can have signed has expired by then, even for a slow clock.
"""

import base64
import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.db import IntegrityError, transaction
from jwt.algorithms import OKPAlgorithm

from fiscobridge.audit.services import record_event
from fiscobridge.core import clock
from fiscobridge.core.encryption import decrypt, encrypt, reencrypt
from fiscobridge.leases.models import SigningKey

PURPOSE = "lease-signing-key"  # the HKDF purpose of core.encryption: these tokens open nowhere else
ALGORITHM = "EdDSA"
# A device accepts a lease this far outside nbf–exp (SPEC 9.1), so a key stays published this much longer.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class LoadedKey:
    kid: str
    private_key: Ed25519PrivateKey
    loaded_at: datetime


_cache: LoadedKey | None = None
_cache_lock = threading.Lock()


def forget_cached_key() -> None:
    """The next lease reads the current key from the database (after a rotation; tests)."""
    global _cache
    with _cache_lock:
        _cache = None


def _thumbprint(public_key: Ed25519PublicKey) -> str:
    """RFC 7638: SHA-256 of the JWK's required members in lexicographic order, base64url."""
    jwk = OKPAlgorithm.to_jwk(public_key, as_dict=True)
    canonical = json.dumps({name: jwk[name] for name in ("crv", "kty", "x")}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def _new_key_row() -> SigningKey:
    private_key = Ed25519PrivateKey.generate()
    public_key = private_key.public_key()
    return SigningKey(
        kid=_thumbprint(public_key),
        public_key=public_key.public_bytes_raw(),
        private_key_encrypted=encrypt(PURPOSE, private_key.private_bytes_raw()),
    )


def _current_row() -> SigningKey:
    row = SigningKey.objects.filter(current=True).first()
    if row is not None:
        return row
    try:
        # The unique index on `current` lets one first key win when processes race to make it.
        with transaction.atomic():
            row = _new_key_row()
            row.save()
            return row
    except IntegrityError:
        return SigningKey.objects.get(current=True)


def current_signing_key() -> LoadedKey:
    """The key new leases are signed with (made on first need), from the process cache while it is fresh."""
    global _cache
    now = clock.now()
    cached = _cache
    if cached is not None and cached.loaded_at <= now < cached.loaded_at + timedelta(
        seconds=settings.LEASE_KEY_CACHE_SECONDS
    ):
        return cached
    row = _current_row()
    private_key = Ed25519PrivateKey.from_private_bytes(decrypt(PURPOSE, bytes(row.private_key_encrypted)))
    loaded = LoadedKey(kid=row.kid, private_key=private_key, loaded_at=now)
    with _cache_lock:
        _cache = loaded
    return loaded


def retired_key_published_until(retired_at: datetime) -> datetime:
    """The last moment a lease signed by a key retired at `retired_at` can still be accepted."""
    return retired_at + timedelta(hours=settings.LEASE_HOURS, seconds=settings.LEASE_KEY_CACHE_SECONDS) + CLOCK_SKEW


@dataclass(frozen=True)
class Rotation:
    new: SigningKey
    retired: SigningKey | None


def rotate_signing_key(*, actor=None) -> Rotation:
    """A new current key; the old one is retired and stays published until its leases expired."""
    with transaction.atomic():
        now = clock.now()
        retired = SigningKey.objects.select_for_update().filter(current=True).first()
        if retired is not None:
            # Retire first: the unique index allows one current key at a time.
            retired.current, retired.retired_at = None, now
            retired.published_until = retired_key_published_until(now)
            retired.save(update_fields=["current", "retired_at", "published_until"])
        new = _new_key_row()
        new.created_at = now
        new.save()
        record_event(
            action="signing_key.rotated",
            actor=actor,
            target=new,
            details={
                "kid": new.kid,
                "retired_kid": retired.kid if retired else None,
                "retired_published_until": retired.published_until.isoformat() if retired else None,
            },
        )
    forget_cached_key()
    return Rotation(new=new, retired=retired)


def public_jwk(row: SigningKey) -> dict:
    public_key = Ed25519PublicKey.from_public_bytes(bytes(row.public_key))
    jwk = OKPAlgorithm.to_jwk(public_key, as_dict=True)
    return {**jwk, "kid": row.kid, "use": "sig", "alg": ALGORITHM}


def published_jwks(at: datetime | None = None) -> dict:
    """The JWKS devices check leases with: the current key (made now if there is none yet) and the
    retired keys whose leases may still be valid, newest first."""
    _current_row()
    return {"keys": [public_jwk(row) for row in SigningKey.objects.published(at)]}


def reencrypt_signing_keys() -> int:
    """Re-encrypt every stored private key under the current encryption secret (the encryption
    key's rotation, `fiscobridge rotate-encryption-key`)."""
    count = 0
    for pk, token in SigningKey.objects.values_list("pk", "private_key_encrypted").iterator():
        SigningKey.objects.filter(pk=pk).update(private_key_encrypted=reencrypt(PURPOSE, bytes(token)))
        count += 1
    forget_cached_key()
    return count
