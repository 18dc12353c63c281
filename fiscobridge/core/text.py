"""Checks of free text that people type (names, references, reasons)."""

import unicodedata

from fiscobridge.core.errors import InvalidInput


def has_control_characters(value: str) -> bool:
    """NUL and other control characters: PostgreSQL refuses NUL, and none belongs in a label."""
    return any(unicodedata.category(char) == "Cc" for char in value)


def clean_text(value: str | None, *, field: str, max_length: int, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise InvalidInput.for_field(field, f"{field.capitalize()} is required")
    if len(text) > max_length:
        raise InvalidInput.for_field(field, f"{field.capitalize()} must be at most {max_length} characters")
    if has_control_characters(text):
        raise InvalidInput.for_field(field, f"{field.capitalize()} must not contain control characters")
    return text


def size_text(limit: int) -> str:
    """A size limit as people write it: `1 MB`, `512 KB`, or bytes when it is neither."""
    if limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MB"
    if limit % 1024 == 0:
        return f"{limit // 1024} KB"
    return f"{limit} bytes"
