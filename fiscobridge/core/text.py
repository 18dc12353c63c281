"""Checks of free text that people type (names, references, reasons)."""

import unicodedata

from fiscobridge.core.errors import InvalidInput


def has_control_characters(value: str) -> bool:
    """NUL and other control characters: PostgreSQL refuses NUL, and none belongs in a label."""
    return any(unicodedata.category(char) == "Cc" for char in value)


def clean_text(value: str | None, *, field: str, max_length: int, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise InvalidInput(f"{field.capitalize()} is required", details={"field": field})
    if len(text) > max_length:
        raise InvalidInput(f"{field.capitalize()} must be at most {max_length} characters", details={"field": field})
    if has_control_characters(text):
        raise InvalidInput(f"{field.capitalize()} must not contain control characters", details={"field": field})
    return text
