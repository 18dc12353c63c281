from fiscobridge.core.errors import Conflict, DomainError


class SeatLimitReached(Conflict):
    """Every seat is in use: revoke or remove one, or add seats (Upgrade Plan)."""

    code = "seat_limit_reached"
    message = "All your seats are in use. Free a seat or add seats with Upgrade Plan."


class InvalidRenewal(DomainError):
    code = "invalid_renewal"
    message = "That subscription cannot be renewed with this key"
    http_status = 400
