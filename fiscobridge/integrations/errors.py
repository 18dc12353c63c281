"""Errors of Integrations connections (SPEC 4.2). Seat exhaustion is subscriptions' SeatLimitReached."""

from fiscobridge.core.errors import Conflict, DomainError, NotFound


class InvoiceLimitReached(DomainError):
    """The report would take the connection past its tier's monthly quota; nothing was counted."""

    code = "invoice_limit_reached"
    message = "This connection has reached its monthly invoice limit"
    http_status = 429


class ConnectionAlreadyRemoved(Conflict):
    code = "connection_already_removed"
    message = "This connection has already been removed"


class TrialNotAvailable(Conflict):
    code = "trial_not_available"
    message = "The free trial connection is only available without a paid Integrations subscription"


class ConnectionNotFound(NotFound):
    message = "No such connection"
