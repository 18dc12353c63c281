"""Domain errors: one class per failure, a stable snake_case code and the user-facing message.

Every layer translates these in one place (the API into the JSON error body, pages into form
errors, the CLI into a message and exit status 1).
"""

from typing import Any


class DomainError(Exception):
    code = "error"
    message = "Something went wrong"
    http_status = 400

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.message
        self.details = details or {}
        super().__init__(self.message)

    def __reduce__(self):
        # Pickled as its state, not its constructor's arguments (subclasses take their own):
        # an error raised in a child process (core.bounded) arrives whole in the parent.
        return (_rebuild_error, (type(self), self.__dict__.copy()))


def _rebuild_error(cls: type[DomainError], state: dict) -> DomainError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", cls.message))
    error.__dict__.update(state)
    return error


class InvalidInput(DomainError):
    code = "invalid_input"
    message = "The request is not valid"
    http_status = 422

    @classmethod
    def for_field(cls, field: str, message: str) -> "InvalidInput":
        """A refused value of one named field; forms show the message next to that field."""
        return cls(message, details={"field": field})


class NotFound(DomainError):
    code = "not_found"
    message = "Not found"
    http_status = 404


class PermissionDenied(DomainError):
    code = "forbidden"
    message = "You are not allowed to do this"
    http_status = 403


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


class DecryptionError(Exception):
    """The token was not made by `encrypt` with this secret and purpose (or was altered)."""
