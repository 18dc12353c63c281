"""Errors of key redemption (SPEC 2.5, in check order) and of the partner's key actions."""

from fiscobridge.core.errors import Conflict, DomainError, NotFound
from fiscobridge.keys.codes import PREFIXES, FormatProblem

PRODUCT_NAMES = {"pos": "Cloud POS", "int": "Integrations"}
PRODUCT_PAGES = {"pos": "POS Manager", "int": "Integrations"}


class TooManyAttempts(DomainError):
    code = "too_many_attempts"
    message = "Too many failed attempts"
    http_status = 429

    def __init__(self, *, retry_after: int):
        self.retry_after = retry_after
        super().__init__(details={"retry_after": retry_after})


def format_hints(product: str, problem: FormatProblem) -> list[str]:
    prefix = PREFIXES.get(product, "POS")
    hints = [
        f"The key is exactly {prefix}-XXXX-XXXX-XXXX: a {prefix}- prefix followed by three groups of four characters",
        "Keys use uppercase letters and digits 2–9 only (zero and one are never used)",
        "Spaces and dashes are trimmed, so a key pasted from an e-mail works",
    ]
    if problem is FormatProblem.CHECK_CHARACTER:
        hints.insert(0, "One character looks mistyped: compare each character with your key")
    return hints


class KeyInQuery(DomainError):
    """A whole key in a query string: URLs reach access logs, proxies and browser history."""

    code = "key_in_query"
    message = (
        "A full key must not travel in a URL: search by its last group (e.g. X7QK), "
        "or look the key up with POST /api/v1/partner/keys/lookup"
    )
    http_status = 422


class InvalidKeyFormat(DomainError):
    code = "invalid_format"
    message = "Invalid key format"
    http_status = 400

    def __init__(self, *, product: str, problem: FormatProblem):
        super().__init__(details={"problem": problem.value, "hints": format_hints(product, problem)})


class WrongProduct(DomainError):
    code = "wrong_product"
    http_status = 400

    def __init__(self, *, key_product: str):
        prefix = PREFIXES[key_product]
        article = "an" if key_product == "int" else "a"
        super().__init__(
            f"This is {article} {PRODUCT_NAMES[key_product]} key ({prefix}-). "
            f"Redeem it on the {PRODUCT_PAGES[key_product]} page.",
            details={"key_product": key_product},
        )


class AlreadyActivated(Conflict):
    code = "already_activated"
    message = "This key is already active on your account"


class KeyNotAvailable(Conflict):
    """Unknown, activated elsewhere, revoked or past redeem-by: deliberately indistinguishable."""

    code = "not_available"
    message = "This activation key is not available"


class KeyAlreadyActivated(Conflict):
    code = "key_already_activated"
    message = "This key has been activated and can no longer be revoked"


class KeyAlreadyRevoked(Conflict):
    code = "key_already_revoked"
    message = "This key is already revoked"


class KeyNotVoidable(Conflict):
    code = "key_not_voidable"
    message = "Only an activated key that is not yet voided can be voided"


class KeyNotFound(NotFound):
    message = "No such key"
