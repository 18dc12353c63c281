"""Keyed hashing for bearer secrets (activation keys, API tokens, audit input hashes)."""

import hashlib
import hmac

from django.conf import settings


def keyed_hash(purpose: str, value: str) -> str:
    """HMAC-SHA256 under the key secret, domain-separated by purpose; 64 hex characters.

    Purposes keep one secret from producing the same digest for, say, a key code and an
    attempt's raw input, so no stored digest can be matched against another table's.
    """
    message = f"{purpose}\x00{value}".encode()
    return hmac.new(settings.KEY_HMAC_SECRET.encode(), message, hashlib.sha256).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
