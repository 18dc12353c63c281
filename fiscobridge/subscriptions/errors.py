from fiscobridge.core.errors import Conflict


class SeatLimitReached(Conflict):
    """Every seat is in use: revoke or remove one, or add seats (Upgrade Plan)."""

    code = "seat_limit_reached"
    message = "All your seats are in use. Free a seat or add seats with Upgrade Plan."
