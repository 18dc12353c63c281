"""Bad input on every API endpoint: 400/422 with the error body, nothing written, nothing echoed.

Validate and activate record every attempt that reaches the service (SPEC 2.6), so a key of the
wrong format is recorded (not as a failure); a request the schema rejects never reaches it and
leaves no trace at all.
"""

import base64
import re

import pytest

from fiscobridge.audit.models import Event
from fiscobridge.core.crypto import keyed_hash
from fiscobridge.keys.models import ActivationKey, FailureCounter, KeyBatch, KeyStatus, RedeemAttempt
from fiscobridge.subscriptions.models import Subscription
from tests.factories import assert_error, mistyped, post_json, revoke_url, unknown_code

VALIDATE = "/api/v1/keys/validate"
ACTIVATE = "/api/v1/keys/activate"
SUBSCRIPTIONS = "/api/v1/subscriptions"
PARTNER_KEYS = "/api/v1/partner/keys"
LOOKUP = "/api/v1/partner/keys/lookup"
HUGE = "A" * 100_000
# Longest query value under REQUEST_MAX_URL_BYTES (longer URLs get 414: test_over_long_url_…).
LONG = "A" * 4_000


# --- helpers ---------------------------------------------------------------------------------


def row_counts() -> dict[str, int]:
    return {
        m.__name__: m.objects.count()
        for m in (ActivationKey, KeyBatch, Subscription, RedeemAttempt, FailureCounter, Event)
    }


def assert_not_echoed(response, *submitted: str) -> None:
    """No part of a submitted key (beyond the last group a hint may show) is in the response."""
    text = response.content.decode()
    for raw in submitted:
        compact = re.sub(r"[\s\-]", "", raw)
        fragments = {raw, compact}
        if len(compact) >= 15:
            fragments.add(compact[3:11])  # the hidden groups of a key
        for fragment in fragments:
            if len(fragment) >= 6:
                assert fragment not in text, f"response echoes {fragment[:40]!r}"


def assert_validation_details(error: dict) -> None:
    assert error["code"] == "invalid_request"
    assert isinstance(error["details"]["errors"], list) and error["details"]["errors"]
    for item in error["details"]["errors"]:
        assert set(item) == {"loc", "msg", "type"}  # where and what, never the rejected input


@pytest.fixture
def before(customer, reseller, key_row):
    """Row counts once every persona and the key exist."""
    return row_counts()


def assert_nothing_written(before, key=None) -> None:
    assert row_counts() == before
    if key is not None:
        key.refresh_from_db()
        assert key.status == KeyStatus.AVAILABLE and key.revoked_reason == ""


# --- every POST endpoint: bodies that are not a JSON object ----------------------------------

POST_ENDPOINTS = ["validate", "activate", "issue", "lookup", "revoke"]


@pytest.fixture
def endpoint(request, customer, reseller, key_row):
    """(client, url) of a POST endpoint, called by the persona allowed to use it."""
    return {
        "validate": (customer.client, VALIDATE),
        "activate": (customer.client, ACTIVATE),
        "issue": (reseller.client, PARTNER_KEYS),
        "lookup": (reseller.client, LOOKUP),
        "revoke": (reseller.client, revoke_url(key_row.pk)),
    }[request.param]


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS, indirect=True)
@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        '{"key": "POS-',
        "{'key': 'x'}",
        "",
        "   ",
        "key=x&product=pos",
        "\ufeff{}",
        "[]",
        "[1, 2]",
        "null",
        "42",
        "true",
        '"POS-2345-6789-ABCD"',
    ],
    ids=[
        "garbage",
        "truncated",
        "single-quotes",
        "empty",
        "blank",
        "form-encoded",
        "bom",
        "empty-list",
        "list",
        "null",
        "number",
        "boolean",
        "string",
    ],
)
def test_post_endpoints_reject_bodies_that_are_not_a_json_object(endpoint, before, key_row, body):
    client, url = endpoint
    response = client.post(url, data=body, content_type="application/json")
    assert_error(response, (400, 422))
    assert_nothing_written(before, key_row)


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS, indirect=True)
def test_post_endpoints_reject_invalid_utf8(endpoint, before, key_row):
    client, url = endpoint
    response = client.post(url, data=b'{"key": "\xff\xfe"}', content_type="application/json")
    assert_error(response, (400, 422))
    assert_nothing_written(before, key_row)


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS, indirect=True)
def test_post_endpoints_reject_form_encoded_requests(endpoint, before, key_row, code):
    client, url = endpoint
    response = client.post(url, data={"key": code, "product": "pos", "reason": "x", "seats": "1"})
    assert_error(response, (400, 415, 422))
    assert_not_echoed(response, code)
    assert_nothing_written(before, key_row)


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS, indirect=True)
def test_post_endpoints_reject_a_body_over_the_upload_limit(endpoint, before, key_row, settings):
    client, url = endpoint
    body = '{"key": "' + "A" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + '", "product": "pos", "reason": "x"}'
    response = client.post(url, data=body, content_type="application/json")
    assert_error(response, (400, 413, 422))
    assert len(response.content) < 2000
    assert_nothing_written(before, key_row)


# --- validate and activate -------------------------------------------------------------------


SCHEMA_REJECTED_KEY_PAYLOADS = {
    "empty": lambda code: {},
    "no-product": lambda code: {"key": code},
    "no-key": lambda code: {"product": "pos"},
    "key-null": lambda code: {"key": None, "product": "pos"},
    "key-number": lambda code: {"key": 12345678, "product": "pos"},
    "key-list": lambda code: {"key": [code], "product": "pos"},
    "key-object": lambda code: {"key": {"code": code}, "product": "pos"},
    "product-uppercase": lambda code: {"key": code, "product": "POS"},
    "product-unknown": lambda code: {"key": code, "product": "cloud"},
    "product-empty": lambda code: {"key": code, "product": ""},
    "product-number": lambda code: {"key": code, "product": 1},
    "product-null": lambda code: {"key": code, "product": None},
    "product-list": lambda code: {"key": code, "product": ["pos"]},
    "key-huge": lambda code: {"key": HUGE, "product": "pos"},
    "key-repeated": lambda code: {"key": code * 20, "product": "pos"},
    "key-padded": lambda code: {"key": code + " " * 200, "product": "pos"},
}


@pytest.mark.parametrize("url", [VALIDATE, ACTIVATE])
@pytest.mark.parametrize("case", list(SCHEMA_REJECTED_KEY_PAYLOADS))
def test_validate_and_activate_reject_malformed_payloads_without_recording_an_attempt(
    customer, before, key_row, code, url, case
):
    payload = SCHEMA_REJECTED_KEY_PAYLOADS[case](code)
    response = post_json(customer.client, url, payload)
    error = assert_error(response, 422)
    assert_validation_details(error)
    assert_not_echoed(response, code, HUGE)
    assert_nothing_written(before, key_row)  # no RedeemAttempt, no Event, no Subscription


@pytest.mark.parametrize("renew", ["abc", 1.5, [1], {"id": 1}, ""], ids=repr)
def test_activate_rejects_a_renew_that_is_not_an_id(customer, before, key_row, code, renew):
    response = post_json(customer.client, ACTIVATE, {"key": code, "product": "pos", "renew": renew})
    assert_validation_details(assert_error(response, 422))
    assert_not_echoed(response, code)
    assert_nothing_written(before, key_row)


def test_activate_with_renew_of_an_unknown_subscription_changes_nothing(customer, before, key_row, code):
    response = post_json(customer.client, ACTIVATE, {"key": code, "product": "pos", "renew": 10**30})
    assert_error(response, 400, "invalid_renewal")
    assert_not_echoed(response, code)
    key_row.refresh_from_db()
    assert key_row.status == KeyStatus.AVAILABLE  # the redemption was rolled back
    assert Subscription.objects.count() == before["Subscription"]
    attempt = RedeemAttempt.objects.get()  # it passed the schema: recorded, not as a failure
    assert attempt.outcome == "invalid_renewal" and attempt.failed is False


@pytest.mark.parametrize("url, action", [(VALIDATE, "validate"), (ACTIVATE, "activate")])
@pytest.mark.parametrize(
    "make_raw",
    [
        lambda c: "hello",
        lambda c: "",
        lambda c: "   ",
        lambda c: "POS-",
        lambda c: c[:-1],
        lambda c: c + "Z",
        lambda c: c.replace("-", "_"),
        lambda c: "XYZ" + c[3:],
        mistyped,
        lambda c: "POS-ÄÖÜ2-3456-7892",
        lambda c: "\x00" + c,
        lambda c: c[4:] + "!",
    ],
    ids=[
        "word",
        "empty",
        "blank",
        "prefix-only",
        "short",
        "long",
        "underscores",
        "bad-prefix",
        "mistyped",
        "non-ascii",
        "nul",
        "punctuation",
    ],
)
def test_key_of_invalid_format_is_400_and_recorded_only_as_a_hash(
    customer, before, key_row, code, url, action, make_raw
):
    raw = make_raw(code)
    response = post_json(customer.client, url, {"key": raw, "product": "pos"})
    error = assert_error(response, 400, "invalid_format")
    assert error["message"] == "Invalid key format"
    assert error["details"]["problem"] in {"malformed", "check_character"}
    assert isinstance(error["details"]["hints"], list) and error["details"]["hints"]
    assert_not_echoed(response, raw, code)

    attempt = RedeemAttempt.objects.get()
    assert attempt.action == action and attempt.outcome == "invalid_format"
    assert attempt.failed is False  # rows 2–4 of SPEC 2.5 never count toward a lockout
    assert attempt.input_hash == keyed_hash("attempt-input", raw) and attempt.input_hash != raw
    event = Event.objects.get(action={"validate": "key.validation_failed", "activate": "key.activation_failed"}[action])
    assert event.details["outcome"] == "invalid_format"
    if len(raw) >= 4:
        assert raw not in str(event.details)
    assert not FailureCounter.objects.exists()
    assert Subscription.objects.count() == before["Subscription"]
    key_row.refresh_from_db()
    assert key_row.status == KeyStatus.AVAILABLE


def test_mistyped_key_says_one_character_looks_mistyped(customer, code, before):
    response = post_json(customer.client, VALIDATE, {"key": mistyped(code), "product": "pos"})
    error = assert_error(response, 400, "invalid_format")
    assert error["details"]["problem"] == "check_character"
    assert "mistyped" in error["details"]["hints"][0]


@pytest.mark.parametrize("url", [VALIDATE, ACTIVATE])
def test_key_of_the_other_product_is_400_wrong_product_and_not_a_failure(customer, issue, before, url):
    int_code = issue(product="int", tier="starter")[0]
    response = post_json(customer.client, url, {"key": int_code, "product": "pos"})
    error = assert_error(response, 400, "wrong_product")
    assert "INT-" in error["message"]
    assert_not_echoed(response, int_code)
    attempt = RedeemAttempt.objects.get()
    assert attempt.outcome == "wrong_product" and attempt.failed is False
    assert ActivationKey.objects.filter(status=KeyStatus.AVAILABLE).count() == 2


@pytest.mark.parametrize("url", [VALIDATE, ACTIVATE])
def test_unknown_well_formed_key_is_not_available_and_counts_as_a_failure(customer, before, key_row, code, url):
    unknown = unknown_code(code)
    response = post_json(customer.client, url, {"key": unknown, "product": "pos"})
    assert_error(response, 409, "not_available")
    assert_not_echoed(response, unknown, code)
    attempt = RedeemAttempt.objects.get()
    assert attempt.outcome == "not_available" and attempt.failed is True
    assert Subscription.objects.count() == before["Subscription"]


def test_successful_validate_shows_only_the_hint(customer, code):
    response = post_json(customer.client, VALIDATE, {"key": code.lower().replace("-", " "), "product": "pos"})
    assert response.status_code == 200
    assert response.json()["key_hint"] == f"POS-••••-••••-{code[-4:]}"
    assert_not_echoed(response, code)


# --- subscriptions ---------------------------------------------------------------------------


def test_subscriptions_ignores_unknown_query_parameters(customer, before):
    response = customer.client.get(SUBSCRIPTIONS, {"product": "xyz", "cursor": "!!!", "limit": "-1", "q": LONG})
    assert response.status_code == 200
    assert set(response.json()) == {"pos", "int"}
    assert_nothing_written(before)


def test_over_long_url_answers_414_with_the_error_body(customer, before):
    response = customer.client.get(SUBSCRIPTIONS, {"q": HUGE})
    assert_error(response, 414, "uri_too_long")
    assert_nothing_written(before)


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_wrong_method_answers_405_with_the_error_body(customer, before, method):
    response = getattr(customer.client, method)(SUBSCRIPTIONS, data="{}", content_type="application/json")
    assert_error(response, 405)
    assert_nothing_written(before)


# --- partner: issue keys ---------------------------------------------------------------------

VALID_BATCH = {"product": "pos", "seats": 2, "months": 12, "quantity": 3}


def batch(**changes) -> dict:
    payload = {**VALID_BATCH, **changes}
    return {k: v for k, v in payload.items() if v is not ...}


@pytest.mark.parametrize(
    "payload",
    [
        batch(product=...),
        batch(seats=...),
        batch(months=...),
        batch(quantity=...),
        batch(product="xyz"),
        batch(product="POS"),
        batch(product=None),
        batch(product=1),
        batch(product=["pos"]),
        batch(product="int", tier="enterprise"),
        batch(product="int", tier="Starter"),
        batch(product="int", tier=7),
        batch(seats=0),
        batch(seats=1001),
        batch(seats=-1),
        batch(seats=1.5),
        batch(seats="abc"),
        batch(seats=None),
        batch(seats=[2]),
        batch(seats=10**30),
        batch(months=0),
        batch(months=61),
        batch(months=-12),
        batch(months=2.5),
        batch(months="a year"),
        batch(quantity=0),
        batch(quantity=10_001),
        batch(quantity=-5),
        batch(quantity=1.5),
        batch(quantity="many"),
        batch(quantity=10**30),
        batch(reference=HUGE),
        batch(reference="r" * 201),
        batch(reference=123),
        batch(reference=["x"]),
        batch(redeem_by="tomorrow"),
        batch(redeem_by="2099-13-40T00:00:00Z"),
        batch(redeem_by=[]),
    ],
    ids=lambda p: ",".join(
        [f"no-{k}" for k in VALID_BATCH if k not in p]
        + [f"{k}={str(v)[:12]}" for k, v in p.items() if VALID_BATCH.get(k, ...) != v]
    ),
)
def test_issue_rejects_malformed_batches_and_writes_nothing(reseller, before, payload):
    response = post_json(reseller.client, PARTNER_KEYS, payload)
    assert_validation_details(assert_error(response, 422))
    assert_not_echoed(response, HUGE)
    assert_nothing_written(before)


@pytest.mark.parametrize(
    "payload, field",
    [
        (batch(product="int"), "tier"),
        (batch(product="int", tier=None), "tier"),
        (batch(product="pos", tier="starter"), "tier"),
        (batch(redeem_by="2001-01-01T00:00:00Z"), "redeem_by"),
        (batch(redeem_by=12345), "redeem_by"),
    ],
    ids=["int-without-tier", "int-null-tier", "pos-with-tier", "redeem-by-past", "redeem-by-epoch"],
)
def test_issue_rejects_packages_the_rules_refuse(reseller, before, payload, field):
    response = post_json(reseller.client, PARTNER_KEYS, payload)
    error = assert_error(response, 422, "invalid_input")
    assert error["details"] == {"field": field}
    assert_nothing_written(before)


def test_issue_trims_the_reference_before_checking_its_length(reseller):
    response = post_json(reseller.client, PARTNER_KEYS, batch(reference="  " + "r" * 196 + "  "))
    assert response.status_code == 201
    assert response.json()["batch"]["reference"] == "r" * 196


def test_issue_boundaries_are_accepted(reseller, before):
    response = post_json(
        reseller.client, PARTNER_KEYS, {"product": "int", "tier": "scale", "seats": 1000, "months": 60, "quantity": 1}
    )
    assert response.status_code == 201
    response = post_json(reseller.client, PARTNER_KEYS, {"product": "pos", "seats": 1, "months": 1, "quantity": 1})
    assert response.status_code == 201
    assert KeyBatch.objects.count() == before["KeyBatch"] + 2


@pytest.mark.parametrize("field", ["seats", "months", "quantity"])
def test_issue_rejects_booleans_as_numbers(reseller, before, field):
    response = post_json(reseller.client, PARTNER_KEYS, batch(**{field: True}))
    assert_error(response, 422)
    assert_nothing_written(before)


@pytest.mark.parametrize("redeem_by", ["2001-01-01", "2001-01-01T00:00:00"])
def test_issue_rejects_a_past_redeem_by_without_time_zone(reseller, before, redeem_by):
    response = post_json(reseller.client, PARTNER_KEYS, batch(redeem_by=redeem_by))
    assert_error(response, 422, "invalid_input")
    assert_nothing_written(before)


@pytest.mark.parametrize("redeem_by", ["2099-12-31", "2099-12-31T23:59:59"])
def test_issue_accepts_or_refuses_a_future_redeem_by_without_time_zone(reseller, redeem_by):
    response = post_json(reseller.client, PARTNER_KEYS, batch(redeem_by=redeem_by))
    # A date-time without a zone is read as UTC; a bare date means "through that day" in the
    # partner's zone (Pacific/Fiji, UTC+12, by default): its next local midnight, said in UTC.
    expected = {"2099-12-31": "2099-12-31T12:00:00Z", "2099-12-31T23:59:59": "2099-12-31T23:59:59Z"}[redeem_by]
    assert response.status_code == 201
    assert response.json()["batch"]["redeem_by"] == expected


def test_issue_refuses_a_nul_character_in_the_reference(reseller, before):
    response = post_json(reseller.client, PARTNER_KEYS, batch(reference="order\x0042"))
    assert_error(response, 422)
    assert_nothing_written(before)


# --- partner: list keys ----------------------------------------------------------------------


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"status": "bogus"}, None),
        ({"status": "AVAILABLE"}, None),
        ({"status": LONG}, None),
        ({"product": "xyz"}, "invalid_request"),
        ({"product": "POS"}, "invalid_request"),
        ({"batch": "abc"}, "invalid_request"),
        ({"batch": "1.5"}, "invalid_request"),
        ({"limit": "0"}, "invalid_request"),
        ({"limit": "201"}, "invalid_request"),
        ({"limit": "-1"}, "invalid_request"),
        ({"limit": "ten"}, "invalid_request"),
        ({"cursor": "!!!"}, "invalid_cursor"),
        ({"cursor": "x" * 65}, "invalid_request"),
        ({"cursor": _cursor("x12")}, "invalid_cursor"),
        ({"cursor": _cursor("kabc")}, "invalid_cursor"),
        ({"cursor": _cursor("k")}, "invalid_cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"k\xff\xfe").decode()}, "invalid_cursor"),
        ({"q": LONG}, "invalid_request"),
        ({"q": "q" * 201}, "invalid_request"),
        ({"tier": "t" * 11}, "invalid_request"),
    ],
    ids=lambda v: ",".join(f"{k}={str(x)[:10]}" for k, x in v.items()) if isinstance(v, dict) else str(v),
)
def test_list_rejects_bad_filters_with_error_body(reseller, before, params, expected):
    response = reseller.client.get(PARTNER_KEYS, params)
    error = assert_error(response, 422, expected)
    assert "A" * 50 not in response.content.decode()
    if expected == "invalid_request":
        assert_validation_details(error)
    assert_nothing_written(before)


def test_list_cursor_past_every_key_gives_an_empty_page(reseller, before):
    response = reseller.client.get(PARTNER_KEYS, {"cursor": _cursor("k1")})
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


def test_list_with_a_batch_id_beyond_64_bits_is_empty_not_an_error(reseller, before):
    response = reseller.client.get(PARTNER_KEYS, {"batch": str(10**30)})
    assert response.status_code == 200
    assert response.json()["items"] == []


def test_list_search_with_a_nul_character_is_refused(reseller, before):
    response = reseller.client.get(PARTNER_KEYS, {"q": "ref\x00"})
    assert assert_error(response, 422)["details"] == {"field": "q"}
    assert_nothing_written(before)


# --- partner: lookup -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [{}, {"key": None}, {"key": 1234}, {"key": ["POS-2345"]}, {"key": HUGE}, {"key": "P" * 201}, {"code": "POS"}],
    ids=["empty", "null", "number", "list", "huge", "too-long", "wrong-field"],
)
def test_lookup_rejects_malformed_payloads(reseller, before, key_row, payload):
    response = post_json(reseller.client, LOOKUP, payload)
    assert_validation_details(assert_error(response, 422))
    assert_not_echoed(response, HUGE)
    assert_nothing_written(before, key_row)


@pytest.mark.parametrize(
    "make_raw",
    [lambda c: "hello", lambda c: "", mistyped, lambda c: c[4:]],
    ids=["word", "empty", "mistyped", "no-prefix"],
)
def test_lookup_of_invalid_format_is_400_and_writes_nothing(reseller, before, key_row, code, make_raw):
    raw = make_raw(code)
    response = post_json(reseller.client, LOOKUP, {"key": raw})
    assert_error(response, 400, "invalid_format")
    assert_not_echoed(response, raw, code)
    assert_nothing_written(before, key_row)


def test_lookup_of_an_unknown_key_is_404_and_does_not_echo_it(reseller, before, code):
    unknown = unknown_code(code)
    response = post_json(reseller.client, LOOKUP, {"key": unknown})
    assert_error(response, 404, "not_found")
    assert_not_echoed(response, unknown)
    assert_nothing_written(before)


def test_lookup_of_own_key_shows_the_hint_not_the_code(reseller, code, key_row):
    response = post_json(reseller.client, LOOKUP, {"key": f"  {code.lower()}  "})
    assert response.status_code == 200
    assert response.json()["id"] == key_row.pk
    assert_not_echoed(response, code)


# --- partner: revoke -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"reason": None},
        {"reason": ""},
        {"reason": 42},
        {"reason": ["fraud"]},
        {"reason": HUGE},
        {"reason": "r" * 501},
        {"why": "fraud"},
    ],
    ids=["empty", "null", "blank", "number", "list", "huge", "too-long", "wrong-field"],
)
def test_revoke_rejects_malformed_reasons_and_keeps_the_key(reseller, before, key_row, payload):
    response = post_json(reseller.client, revoke_url(key_row.pk), payload)
    assert_validation_details(assert_error(response, 422))
    assert_not_echoed(response, HUGE)
    assert_nothing_written(before, key_row)


@pytest.mark.parametrize("reason", ["   ", "\n\t"], ids=["spaces", "whitespace"])
def test_revoke_rejects_a_reason_of_only_whitespace(reseller, before, key_row, reason):
    response = post_json(reseller.client, revoke_url(key_row.pk), {"reason": reason})
    error = assert_error(response, 422, "invalid_input")
    assert error["details"] == {"field": "reason"}
    assert_nothing_written(before, key_row)


@pytest.mark.parametrize("key_id", [999_999, 2**63, 10**30])
def test_revoke_of_an_unknown_id_is_404_with_error_body(reseller, before, key_row, key_id):
    response = post_json(reseller.client, revoke_url(key_id), {"reason": "lost"})
    assert_error(response, 404, "not_found")
    assert_nothing_written(before, key_row)


@pytest.mark.parametrize("path", [revoke_url("abc"), revoke_url(-1), revoke_url("1.5"), "/api/v1/partner/nothing"])
def test_unmatched_api_paths_answer_404_with_error_body(reseller, before, key_row, path):
    response = post_json(reseller.client, path, {"reason": "lost"})
    assert_error(response, 404, "not_found")
    assert_nothing_written(before, key_row)


def test_revoke_refuses_a_nul_character_in_the_reason(reseller, before, key_row):
    response = post_json(reseller.client, revoke_url(key_row.pk), {"reason": "fraud\x00"})
    assert_error(response, 422)
    assert_nothing_written(before, key_row)


# --- authentication headers that are not a token ---------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer fbt_",
        "Bearer fbt__",
        "Bearer fbt_abc_def",
        "Bearer fbt_" + "a" * 17 + "_x",
        "Bearer " + "x" * 100_000,
        "Basic dXNlcjpwYXNz",
        "Token fbt_abc_def",
        "bearer",
    ],
    ids=["bare", "empty", "prefix-only", "empty-parts", "unknown", "long-prefix", "huge", "basic", "token", "lower"],
)
@pytest.mark.parametrize("method, url", [("get", SUBSCRIPTIONS), ("post", VALIDATE), ("get", PARTNER_KEYS)])
def test_malformed_authorization_is_401_with_error_body(db, anonymous, header, method, url):
    before = row_counts()
    if method == "get":
        response = anonymous.get(url, HTTP_AUTHORIZATION=header)
    else:
        response = post_json(anonymous, url, {"key": "POS-2345-6789-ABCD", "product": "pos"}, HTTP_AUTHORIZATION=header)
    assert_error(response, 401, "unauthenticated")
    assert "x" * 100 not in response.content.decode()
    assert row_counts() == before
