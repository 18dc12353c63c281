"""Errors of accounts, users and API tokens."""

from fiscobridge.core.errors import Conflict, PermissionDenied


class EmailTaken(Conflict):
    code = "email_taken"
    message = "A user with this e-mail already exists"


class NotACustomer(PermissionDenied):
    code = "forbidden"
    message = "This action is for customer accounts"


class NotAPartner(PermissionDenied):
    code = "forbidden"
    message = "This action is for partners"


class InsufficientScope(PermissionDenied):
    """A valid API token that was not given a scope this route needs (docs/api-tokens.md)."""

    code = "insufficient_scope"
    message = "This API token does not have the scope this request needs"

    def __init__(self, *, required: str, accepted: list[str]):
        super().__init__(details={"required": required, "accepted": accepted})
