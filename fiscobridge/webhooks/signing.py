"""Secrets and signatures per the Standard Webhooks convention (https://www.standardwebhooks.com).

Signed with the `standardwebhooks` library itself, so a receiver verifying with any of its
implementations (Python, JavaScript, …) computes exactly what we sent.
"""

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from fiscobridge.core.encryption import decrypt, encrypt

SECRET_PREFIX = "whsec_"
_PURPOSE = "webhook-secret"


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (the HMAC key is the decoded bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def seal(secret: str) -> bytes:
    return encrypt(_PURPOSE, secret.encode())


def unseal(token: bytes) -> str:
    return decrypt(_PURPOSE, token).decode()


def signed_headers(*, secret: str, message_id: str, body: str, at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` sent at `at`."""
    timestamp = int(at.astimezone(UTC).timestamp())
    signature = Webhook(secret).sign(msg_id=message_id, timestamp=datetime.fromtimestamp(timestamp, UTC), data=body)
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}
