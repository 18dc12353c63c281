"""Key codes (SPEC 2.1–2.2): format, Luhn mod 34, normalization. Pure functions, no database."""

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fiscobridge.keys import codes
from fiscobridge.keys.codes import (
    ALPHABET,
    FormatProblem,
    KeyFormatError,
    check_character,
    generate_code,
    normalize,
    parse_key,
)

VECTORS = json.loads((Path(__file__).parent / "key_vectors.json").read_text())


def spec_check_character(eleven: str) -> str:
    """SPEC 2.1 written out literally, independent of the implementation under test."""
    total = 0
    for position, char in enumerate(reversed(eleven)):
        product = ALPHABET.index(char) * (2 if position % 2 == 0 else 1)
        total += product // 34 + product % 34
    return ALPHABET[(34 - total % 34) % 34]


def spec_body_is_valid(twelve: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(twelve)):
        product = ALPHABET.index(char) * (1 if position % 2 == 0 else 2)
        total += product // 34 + product % 34
    return total % 34 == 0


bodies11 = st.text(alphabet=ALPHABET, min_size=11, max_size=11)


def test_alphabet_is_34_characters_without_zero_or_one():
    assert ALPHABET == "23456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert "0" not in ALPHABET and "1" not in ALPHABET


@given(bodies11)
def test_check_character_matches_the_spec_text(eleven):
    assert check_character(eleven) == spec_check_character(eleven)
    assert spec_body_is_valid(eleven + check_character(eleven))


@pytest.mark.parametrize("product", ["pos", "int"])
def test_every_generated_key_validates(product):
    for _ in range(2000):
        code = generate_code(product)
        assert code.startswith({"pos": "POS-", "int": "INT-"}[product])
        assert len(code) == 18 and code[3] == code[8] == code[13] == "-"
        assert normalize(code) == code
        assert spec_body_is_valid(code.replace("-", "")[3:])


def test_generation_is_uniform_over_the_alphabet():
    counts = dict.fromkeys(ALPHABET, 0)
    for _ in range(3000):
        for char in generate_code("pos")[4:].replace("-", "")[:11]:
            counts[char] += 1
    expected = 3000 * 11 / 34
    # Loose bounds (about ±6 sigma): catches a biased or truncated alphabet, never flaky.
    assert all(0.7 * expected < n < 1.3 * expected for n in counts.values()), counts


@given(bodies11, st.integers(0, 11), st.integers(1, 33))
def test_every_single_character_change_is_rejected(eleven, position, shift):
    body = eleven + check_character(eleven)
    wrong = ALPHABET[(ALPHABET.index(body[position]) + shift) % 34]
    mistyped = body[:position] + wrong + body[position + 1 :]
    with pytest.raises(KeyFormatError) as caught:
        parse_key("POS" + mistyped)
    assert caught.value.problem is FormatProblem.CHECK_CHARACTER


def test_every_single_character_change_of_sampled_keys_is_rejected_exhaustively():
    rng = random.Random(34)
    for _ in range(50):
        eleven = "".join(rng.choice(ALPHABET) for _ in range(11))
        body = eleven + check_character(eleven)
        for position in range(12):
            for char in ALPHABET:
                if char != body[position]:
                    assert not codes.is_valid_body(body[:position] + char + body[position + 1 :])


@st.composite
def typed_keys(draw):
    """A valid key as a person might type or paste it: case, spaces, dashes, look-alikes."""
    product = draw(st.sampled_from(["pos", "int"]))
    eleven = draw(bodies11)
    canonical = codes.format_code(product, eleven + check_character(eleven))
    separators = st.sampled_from(["", " ", "-", "\u2013", "\u2014", "\u00a0", "\u2212", "\t", "\u2010", "\u3000"])
    out = []
    for index, char in enumerate(canonical.replace("-", "")):
        if draw(st.booleans()):
            char = char.lower()
        if char in "OI" and draw(st.booleans()):
            char = {"O": "0", "I": "1"}[char]
        out.append(char)
        if index in (2, 6, 10) or draw(st.integers(0, 9)) == 0:
            out.append(draw(separators))
    typed = draw(st.sampled_from(["", " ", "\u00a0"])) + "".join(out) + draw(st.sampled_from(["", " ", "\n"]))
    return product, canonical, typed


@given(typed_keys())
@settings(max_examples=300)
def test_normalization_accepts_what_people_type(case):
    product, canonical, typed = case
    assert normalize(typed) == canonical
    assert normalize(normalize(typed)) == canonical


@given(typed_keys())
def test_a_key_without_prefix_takes_the_product_of_the_page(case):
    product, canonical, _ = case
    body = canonical[4:]
    assert normalize(body, default_product=product) == canonical
    assert normalize(body.lower().replace("-", " "), default_product=product) == canonical
    with pytest.raises(KeyFormatError):
        normalize(body)  # no page product, no prefix: not a key


@given(st.text(max_size=40))
@settings(max_examples=500)
def test_normalization_is_idempotent_or_rejects(raw):
    try:
        once = normalize(raw, default_product="pos")
    except KeyFormatError:
        return
    assert normalize(once) == once
    assert normalize(once, default_product="int") == once  # a prefix always wins over the page


@pytest.mark.parametrize(
    "raw, problem",
    [
        ("", FormatProblem.MALFORMED),
        ("POS-ABCD-EFGH", FormatProblem.MALFORMED),
        ("XYZ-ABCD-EFGH-IJKL", FormatProblem.MALFORMED),
        ("POS-ABCD-EFGH-IJK!", FormatProblem.MALFORMED),
        ("POS-ABCD-EFGH-IJKLM", FormatProblem.MALFORMED),
        ("POS-AAAA-AAAA-AAAB", FormatProblem.CHECK_CHARACTER),
    ],
)
def test_malformed_input_is_rejected_with_its_problem(raw, problem):
    with pytest.raises(KeyFormatError) as caught:
        normalize(raw, default_product="pos")
    assert caught.value.problem is problem


def test_hint_shows_only_the_last_group():
    assert codes.hint_for("pos", "JKLM") == "POS-••••-••••-JKLM"


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: repr(v["input"]))
def test_shared_vectors(vector):
    """The same file drives the browser's live check (static/js/keycode.js) in the portal tests."""
    if vector["valid"]:
        assert normalize(vector["input"], default_product=vector["page"]) == vector["canonical"]
    else:
        with pytest.raises(KeyFormatError) as caught:
            normalize(vector["input"], default_product=vector["page"])
        assert caught.value.problem.value == vector["problem"]
