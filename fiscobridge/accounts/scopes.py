"""Scopes of API tokens: what a token may do, so that a POS device or a sync engine holds only what
it needs (docs/api-tokens.md lists the routes each scope grants; `api/scopes.py` attaches them).

A token stores its scopes as one space-separated text (`ApiToken.scopes`), read by the token's
one authentication statement (`accounts/hot_sql.py`): no second query, no join table.
"""

from collections.abc import Iterable

from django.db import models


class Scope(models.TextChoices):
    ALL = "all", "Full access"
    READ = "read", "Read only"
    KEYS_REDEEM = "keys:redeem", "Validate and activate keys"
    POS_ENTITLEMENT = "pos:entitlement", "Ask whether a certificate may sign"
    POS_CERTIFICATES = "pos:certificates", "List, upload and revoke certificates"
    INTEGRATIONS_USAGE = "integrations:usage", "Report invoice usage of a connection"
    INTEGRATIONS_CONNECTIONS = "integrations:connections", "List, create and remove connections"
    PARTNER_KEYS = "partner:keys", "Issue, list, look up and revoke keys"


CUSTOMER, PARTNER, STAFF = "customer", "partner", "staff"

# Which kind of user a scope means something for: a customer token with `partner:keys` could
# never be used (the partner routes refuse customers), so it is refused when the token is made.
_KINDS = {
    Scope.ALL: {CUSTOMER, PARTNER, STAFF},
    Scope.READ: {CUSTOMER, PARTNER, STAFF},
    Scope.KEYS_REDEEM: {CUSTOMER},
    Scope.POS_ENTITLEMENT: {CUSTOMER},
    Scope.POS_CERTIFICATES: {CUSTOMER},
    Scope.INTEGRATIONS_USAGE: {CUSTOMER},
    Scope.INTEGRATIONS_CONNECTIONS: {CUSTOMER},
    Scope.PARTNER_KEYS: {PARTNER},
}


def user_kind(user) -> str:
    if user.account_id is not None:
        return CUSTOMER
    if user.partner_id is not None:
        return PARTNER
    return STAFF


def scopes_for_kind(kind: str) -> list[Scope]:
    """The scopes a user of this kind may give a token, in the order of `Scope`."""
    return [scope for scope in Scope if kind in _KINDS[scope]]


def parse_scopes(text: str) -> frozenset[str]:
    return frozenset(text.split())


def format_scopes(scopes: Iterable[str]) -> str:
    return " ".join(sorted(scopes))


def grants(held: frozenset[str], accepted: Iterable[str]) -> bool:
    """Does a token holding `held` pass a route that any of `accepted` opens? `all` opens every route."""
    return Scope.ALL in held or not held.isdisjoint(accepted)
