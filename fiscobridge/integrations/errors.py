"""Errors of Integrations connections (SPEC 4.2). Seat exhaustion is subscriptions' SeatLimitReached."""

from fiscobridge.core.errors import Conflict, DomainError, NotFound, PermissionDenied


class InvoiceLimitReached(DomainError):
    """The report would take the tier past its monthly limit; nothing was counted. The count
    starts again when the account's next local month starts, `retry_after` seconds from now."""

    code = "invoice_limit_reached"
    message = "This connection's tier has reached its monthly invoice limit"
    http_status = 429

    def __init__(self, *, retry_after: int, limit: int, used: int):
        self.retry_after = retry_after
        super().__init__(details={"limit": limit, "used": used, "retry_after": retry_after})


class NoActiveSubscription(PermissionDenied):
    """The connection's tier (or the trial) is not available to the account: it may not sync."""

    code = "no_active_subscription"
    message = (
        "This connection may not sync: its tier has no active Integrations subscription "
        "(a trial connection stops when a paid one starts)"
    )


class ConnectionAlreadyRemoved(Conflict):
    code = "connection_already_removed"
    message = "This connection has already been removed"


class TrialNotAvailable(Conflict):
    code = "trial_not_available"
    message = "The free trial connection is only available without a paid Integrations subscription"


class ConnectionNotFound(NotFound):
    message = "No such connection"
