"""Errors of the web layer, and the pages' one translator of domain errors into what a person reads."""

import math

from fiscobridge.core.errors import DomainError, InvalidInput
from fiscobridge.keys.errors import TooManyAttempts


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"
    message = "The cursor is not valid; start again without it"


def error_context(error: DomainError) -> dict:
    context = {"code": error.code, "message": error.message, "hints": error.details.get("hints", [])}
    if isinstance(error, TooManyAttempts):
        minutes = max(1, math.ceil(error.retry_after / 60))
        context["retry"] = f"You can try again in {minutes} minute{'s' if minutes != 1 else ''}."
    return context
