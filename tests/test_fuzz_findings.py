"""Server errors the API fuzz test (tests/test_api_fuzz.py) found, each fixed at its root and
pinned here on both databases (issue 10, item 10)."""

from datetime import UTC, datetime

import pytest

from fiscobridge.cli import main
from fiscobridge.keys.models import KeyBatch
from tests.factories import assert_error, browser_for, post_json

CERTIFICATES = "/api/v1/pos/certificates"


@pytest.mark.parametrize("field", ["taxpayer", "location"])
@pytest.mark.parametrize("value", ["a\x00b", "\x00", "store\x1b12"])
def test_a_control_character_in_a_certificate_filter_is_refused_not_a_server_error(customer, field, value):
    # Was: PostgreSQL "text fields cannot contain NUL" → 500.
    error = assert_error(customer.client.get(CERTIFICATES, {field: value}), 422, "invalid_input")
    assert error["details"] == {"field": field}


def test_the_pos_manager_page_drops_control_characters_from_its_filters(customer):
    response = browser_for(customer).get("/pos/", {"taxpayer": "Ac\x00me", "location": "\x00"})
    assert response.status_code == 200
    assert 'value="Acme"' in response.content.decode()


def test_a_redeem_by_date_with_no_next_day_is_refused_not_a_server_error(reseller):
    # Was: OverflowError computing the midnight after 9999-12-31 → 500.
    response = post_json(
        reseller.client,
        "/api/v1/partner/keys",
        {"product": "pos", "seats": 1, "months": 1, "quantity": 1, "redeem_by": "9999-12-31"},
    )
    error = assert_error(response, 422, "invalid_request")
    assert error["details"]["errors"][0]["loc"][-1] == "redeem_by"


def test_the_cli_refuses_a_redeem_by_date_with_no_next_day(reseller, capsys):
    argv = ["issue-keys", "--partner-email", reseller.user.email, "--product", "pos", "--seats", "1"]
    status = main([*argv, "--months", "1", "--count", "1", "--redeem-by", "9999-12-31", "--quiet"])
    assert status == 1
    assert "--redeem-by must be a date" in capsys.readouterr().err


def test_a_redeem_by_with_an_offset_postgresql_cannot_store_is_kept_in_utc(reseller):
    # Was: PostgreSQL "time zone displacement out of range" for -16:58 → 500 (found by the random fuzz).
    response = post_json(
        reseller.client,
        "/api/v1/partner/keys",
        {"product": "pos", "seats": 1, "months": 1, "quantity": 1, "redeem_by": "2035-04-19T01:52:07-16:58"},
    )
    assert response.status_code == 201, response.content
    batch = KeyBatch.objects.get(pk=response.json()["batch"]["id"])
    assert batch.redeem_by == datetime(2035, 4, 19, 18, 50, 7, tzinfo=UTC)
