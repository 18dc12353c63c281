"""Prices before paying (issue 12 item 5): Purchase Seats shows the price per seat per month and
year and the total for the chosen seats, read from the configured Stripe Prices (cached), in the
Price's currency — FJD, WST and VUV, which has no minor unit — with the yearly saving.

The local Stripe (tests/stripe_fake.py) prices Cloud POS in FJD (15.00 a month, 150.00 a year),
Integrations Starter in WST (20.00 / 200.00), Growth in VUV (5,000 / 50,000) and Scale in FJD.
"""

import re

import pytest
from django.core.cache import cache

from fiscobridge.billing.money import money_text
from fiscobridge.billing.prices import quotes
from tests.factories import browser_for

PRICES_URL = "/billing/prices/"


def quote_text(persona, **params) -> str:
    response = browser_for(persona).get(PRICES_URL, params, HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.status_code
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())).strip()


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [(1500, "fjd", "FJD 15.00"), (123456, "WST", "WST 1,234.56"), (5000, "vuv", "VUV 5,000"), (7, "FJD", "FJD 0.07")],
)
def test_money_is_written_in_its_currencys_units(amount, currency, text):
    assert money_text(amount, currency) == text


def test_cloud_pos_prices_per_seat_and_the_total_in_fiji_dollars(stripe_on, customer):
    text = quote_text(customer, product="pos", seats="3")
    assert "FJD 15.00 per seat per month · 3 seats: FJD 45.00 a month" in text
    assert "FJD 150.00 per seat per year · 3 seats: FJD 450.00 a year" in text
    # 12 × 15.00 = 180.00 a seat; 150.00 saves 30.00 a seat (17 %), 90.00 for three seats.
    assert "Save 17 % FJD 90.00 less than paying monthly for a year" in text


def test_integrations_prices_follow_the_chosen_tier_and_its_currency(stripe_on, customer):
    starter = quote_text(customer, product="int", tier="starter", seats="1")
    assert "WST 20.00 per seat per month · 1 seat: WST 20.00 a month" in starter
    growth = quote_text(customer, product="int", tier="growth", seats="2")
    # The vatu has no minor unit: 5000 is VUV 5,000, never VUV 50.00.
    assert "VUV 5,000 per seat per month · 2 seats: VUV 10,000 a month" in growth
    assert "VUV 50,000 per seat per year · 2 seats: VUV 100,000 a year" in growth
    assert "Save 17 % VUV 20,000 less than paying monthly for a year" in growth


def test_prices_are_read_from_stripe_once_then_cached(stripe_on, customer):
    for seats in ("1", "2", "7"):
        assert "FJD 15.00 per seat per month" in quote_text(customer, product="pos", seats=seats)
    reads = stripe_on.requests_to("GET", r"/v1/prices/\w+")
    assert sorted(r.path for r in reads) == ["/v1/prices/price_pos_monthly", "/v1/prices/price_pos_yearly"]


def test_a_price_changed_in_stripe_shows_after_the_cache_expires(stripe_on, customer):
    assert "FJD 15.00 per seat per month" in quote_text(customer, product="pos", seats="1")
    stripe_on.stripe().v1.plans.delete("price_pos_monthly")
    product = stripe_on.stripe().v1.products.create({"name": "Cloud POS, new price"}).id
    stripe_on.stripe().v1.plans.create(
        {"id": "price_pos_monthly", "amount": 1800, "currency": "fjd", "interval": "month", "product": product}
    )
    assert "FJD 15.00 per seat per month" in quote_text(customer, product="pos", seats="1")  # cached
    cache.clear()  # as STRIPE_PRICE_CACHE_SECONDS passing would
    assert "FJD 18.00 per seat per month" in quote_text(customer, product="pos", seats="1")


def test_when_stripe_cannot_be_reached_the_form_says_checkout_shows_the_price(stripe_on, customer):
    stripe_on.fail_next("GET", r"/v1/prices/price_pos_monthly", status=500)
    stripe_on.fail_next("GET", r"/v1/prices/price_pos_yearly", status=500)
    text = quote_text(customer, product="pos", seats="2")
    assert text == "Stripe Checkout shows the price before you pay."
    # The failure is remembered for a minute: the next views do not wait on Stripe again.
    assert quote_text(customer, product="pos", seats="2") == text
    assert len(stripe_on.requests_to("GET", r"/v1/prices/\w+")) == 2


def test_without_stripe_settings_no_price_is_shown(customer):
    assert quote_text(customer, product="pos", seats="2") == "Stripe Checkout shows the price before you pay."
    assert quotes(product="pos", tier="", seats=2) == []


@pytest.mark.parametrize("seats", ["0", "1001", "x", "", "2.5"])
def test_seats_out_of_range_are_a_clear_message(stripe_on, customer, seats):
    text = quote_text(customer, product="pos", seats=seats)
    assert "seats" in text.lower() and "per seat" not in text


def test_the_purchase_form_asks_for_prices_without_the_csrf_token_in_the_url(stripe_on, customer):
    page = browser_for(customer).get("/pos/").content.decode()
    block = re.search(r'<div id="price-quote-pos".*?>', page, re.S).group(0)
    assert 'hx-get="/billing/prices/"' in block and 'hx-params="product,tier,seats"' in block


def test_prices_are_for_customers_only(stripe_on, anonymous, reseller, staff):
    assert anonymous.get(PRICES_URL, {"product": "pos", "seats": "1"})["Location"].startswith("/login/")
    for persona in (reseller, staff):
        assert browser_for(persona).get(PRICES_URL, {"product": "pos", "seats": "1"}).status_code == 403
