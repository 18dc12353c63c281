"""Checking a lease as a POS device does, from the token and a JWKS alone (no database, no
network): `fiscobridge verify-lease`. docs/leases.md shows the same check in a few lines of
PyJWT or jose for a device's own code."""

from dataclasses import dataclass, field

import jwt

from fiscobridge.leases.services import AUDIENCE
from fiscobridge.leases.signing_keys import ALGORITHM, CLOCK_SKEW

REQUIRED_CLAIMS = ["iss", "aud", "sub", "acct", "fpr", "can_sign", "reason", "iat", "nbf", "exp", "jti"]


@dataclass(frozen=True)
class Verdict:
    valid: bool
    problem: str = ""  # why it is not valid
    header: dict = field(default_factory=dict)
    claims: dict = field(default_factory=dict)  # unverified when not valid: for the reader only

    @property
    def may_sign(self) -> bool:
        return self.valid and self.claims.get("can_sign") is True


def verify_lease(token: str, jwks: dict, *, uid: str | None = None, fingerprint: str | None = None) -> Verdict:
    """Valid when the signature verifies with the JWKS key named by the token's `kid`, `aud` is
    fiscobridge-pos, now is within nbf–exp give or take 5 minutes, and (when given) `sub` and
    `fpr` are this certificate's."""
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        return Verdict(False, f"not a JWT: {error}")
    try:
        keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(jwks).keys}
    except jwt.PyJWTError as error:
        return Verdict(False, f"no usable key in the JWKS: {error}", header, unverified)
    key = keys.get(header.get("kid"))
    if key is None:
        return Verdict(False, f"the JWKS has no key {header.get('kid')!r}", header, unverified)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            leeway=CLOCK_SKEW,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as error:
        return Verdict(False, str(error) or type(error).__name__, header, unverified)
    if uid is not None and claims["sub"] != uid:
        return Verdict(False, f"the lease is for certificate {claims['sub']}, not {uid}", header, claims)
    if fingerprint is not None and claims["fpr"] != fingerprint.lower().replace(":", ""):
        return Verdict(False, "the lease is for another certificate fingerprint", header, claims)
    return Verdict(True, "", header, claims)
