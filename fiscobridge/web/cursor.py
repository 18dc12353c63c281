"""The keyset cursor of key lists (Partner Portal pages and the partner API): one opaque token
naming the last key of a page, so the next page starts below it at constant cost."""

import base64
import binascii

from fiscobridge.core.ids import is_storable_id
from fiscobridge.web.errors import InvalidCursor


def encode_cursor(key_id: int) -> str:
    return base64.urlsafe_b64encode(f"k{key_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The key id a cursor names; InvalidCursor for anything we did not make (or an id past bigint)."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("k"):
            raise ValueError
        key_id = int(text[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor() from None
    if not is_storable_id(key_id):
        raise InvalidCursor()
    return key_id
