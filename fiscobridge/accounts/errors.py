"""Errors of accounts, users and API tokens."""

from fiscobridge.core.errors import Conflict, DomainError, InvalidInput, PermissionDenied


class EmailTaken(Conflict):
    code = "email_taken"
    message = "A user with this e-mail already exists"


class NotACustomer(PermissionDenied):
    code = "forbidden"
    message = "This action is for customer accounts"


class NotAPartner(PermissionDenied):
    code = "forbidden"
    message = "This action is for partners"


class TwoFactorCodeInvalid(InvalidInput):
    code = "two_factor_code_invalid"
    message = "That code is not right. Enter the current 6-digit code from your authenticator app, or a recovery code."


class TwoFactorThrottled(DomainError):
    code = "two_factor_throttled"
    message = "Too many wrong codes"
    http_status = 429

    def __init__(self, *, retry_after: int):
        # django-otp's waiting time after the latest wrong code, in seconds.
        self.retry_after = retry_after
        super().__init__(
            f"Too many wrong codes. Wait {retry_after} second{'s' if retry_after != 1 else ''} and try again.",
            details={"retry_after": retry_after},
        )


class TwoFactorRequired(PermissionDenied):
    code = "two_factor_required"
    message = "Two-factor sign-in is required for your account; set it up to continue"


class NoAuthenticatorToConfirm(Conflict):
    code = "no_authenticator_to_confirm"
    message = "Start setting up an authenticator app first"


class InsufficientScope(PermissionDenied):
    """A valid API token that was not given a scope this route needs (docs/api-tokens.md)."""

    code = "insufficient_scope"
    message = "This API token does not have the scope this request needs"

    def __init__(self, *, required: str, accepted: list[str]):
        super().__init__(details={"required": required, "accepted": accepted})
