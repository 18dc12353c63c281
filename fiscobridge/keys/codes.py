"""Activation-key codes: format, normalization, Luhn mod 34 check character, generation.

Pure functions: the same rules are mirrored in static/js/keycode.js and both are held to
tests/key_vectors.json. `code_digest` alone reads a secret: the keyed hash that is all we store
of a code.
"""

import re
import secrets
import unicodedata
from dataclasses import dataclass
from enum import Enum

from fiscobridge.core.crypto import keyed_hash

ALPHABET = "23456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
BASE = len(ALPHABET)  # 34
VALUE = {char: index for index, char in enumerate(ALPHABET)}
RANDOM_LENGTH = 11
BODY_LENGTH = RANDOM_LENGTH + 1
PREFIXES = {"pos": "POS", "int": "INT"}
PRODUCT_OF_PREFIX = {prefix: product for product, prefix in PREFIXES.items()}
MASK = "••••"

# Unicode "Pd" (dash punctuation) plus U+2212 MINUS SIGN, which is "Sm" but looks like a dash.
_DASHES = "".join(chr(cp) for cp in range(0x110000) if unicodedata.category(chr(cp)) == "Pd") + "\u2212"
_STRIP = re.compile(r"[\s" + re.escape(_DASHES) + "]+")
_LOOKALIKES = str.maketrans({"0": "O", "1": "I"})


class FormatProblem(Enum):
    MALFORMED = "malformed"  # wrong length, prefix or characters
    CHECK_CHARACTER = "check_character"  # well-formed, but one character looks mistyped


@dataclass(frozen=True)
class ParsedKey:
    product: str  # "pos" | "int"
    body: str  # the 12 characters after the prefix

    @property
    def canonical(self) -> str:
        return format_code(self.product, self.body)


class KeyFormatError(ValueError):
    def __init__(self, problem: FormatProblem):
        self.problem = problem
        super().__init__(problem.value)


def _luhn_sum(chars: str, double_rightmost: bool) -> int:
    total = 0
    double = double_rightmost
    for char in reversed(chars):
        product = VALUE[char] * (2 if double else 1)
        total += product // BASE + product % BASE
        double = not double
    return total


def check_character(random_part: str) -> str:
    """The Luhn mod 34 check character for the 11 random characters."""
    if len(random_part) != RANDOM_LENGTH or any(c not in VALUE for c in random_part):
        raise ValueError("expected 11 alphabet characters")
    return ALPHABET[(BASE - _luhn_sum(random_part, double_rightmost=True) % BASE) % BASE]


def is_valid_body(body: str) -> bool:
    """True when the 12 characters are alphabet characters whose Luhn mod 34 sum is 0."""
    if len(body) != BODY_LENGTH or any(c not in VALUE for c in body):
        return False
    return _luhn_sum(body, double_rightmost=False) % BASE == 0


def format_code(product: str, body: str) -> str:
    return f"{PREFIXES[product]}-{body[0:4]}-{body[4:8]}-{body[8:12]}"


def generate_code(product: str) -> str:
    """A new canonical code: 11 characters from the CSPRNG, uniform over the alphabet, + check."""
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return format_code(product, random_part + check_character(random_part))


def squash(raw: str) -> str:
    """Steps 1–2 of SPEC 2.2: NFKC, drop whitespace and dashes, uppercase, 0→O and 1→I."""
    text = unicodedata.normalize("NFKC", raw)
    text = _STRIP.sub("", text)
    return text.upper().translate(_LOOKALIKES)


def parse_key(raw: str, default_product: str | None = None) -> ParsedKey:
    """Normalize what a user typed into a key, or raise KeyFormatError.

    Twelve characters without a prefix take `default_product` (the product of the page).
    """
    text = squash(raw)
    if len(text) == BODY_LENGTH + 3 and text[:3] in PRODUCT_OF_PREFIX:
        product, body = PRODUCT_OF_PREFIX[text[:3]], text[3:]
    elif len(text) == BODY_LENGTH and default_product in PREFIXES:
        product, body = default_product, text
    else:
        raise KeyFormatError(FormatProblem.MALFORMED)
    if any(c not in VALUE for c in body):
        raise KeyFormatError(FormatProblem.MALFORMED)
    if not is_valid_body(body):
        raise KeyFormatError(FormatProblem.CHECK_CHARACTER)
    return ParsedKey(product=product, body=body)


def normalize(raw: str, default_product: str | None = None) -> str:
    """The canonical `PREFIX-XXXX-XXXX-XXXX` form of a typed key (raises KeyFormatError)."""
    return parse_key(raw, default_product).canonical


def hint_for(product: str, last_group: str) -> str:
    """The display hint `POS-••••-••••-XXXX`: only the last group is ever shown again."""
    return f"{product.upper()}-{MASK}-{MASK}-{last_group}"


def is_full_key(text: str) -> bool:
    """Whether `text` is a whole key (with its prefix), however it was typed."""
    try:
        parse_key(text)
    except KeyFormatError:
        return False
    return True


def search_term(q: str) -> str:
    """What a search may carry: a full key pasted into a search box becomes its last group.

    Search terms travel in URLs (and so into access logs and browser history); a key never may.
    """
    try:
        return parse_key(q).canonical[-4:]
    except KeyFormatError:
        return q


KEY_HASH_PURPOSE = "activation-key"


def code_digest(canonical: str) -> str:
    """The keyed hash stored for a canonical code (`ActivationKey.code_hmac`): never the code."""
    return keyed_hash(KEY_HASH_PURPOSE, canonical)
