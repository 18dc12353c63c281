"""Buying online in a real browser: Upgrade Plan → Purchase Seats → (local) Stripe Checkout → back.

Playwright drives Debian's Chromium against live_server; the Checkout page, its Pay button and
the webhook delivery come from the local Stripe of tests/stripe_fake.py.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from fiscobridge.billing.models import CheckoutSession
from fiscobridge.subscriptions.capacity import int_capacity_by_tier
from fiscobridge.subscriptions.models import Source, Subscription
from tests.factories import PFX_PASSWORD, assert_not_reloaded, buy, log_in, mark_page, new_pfx
from tests.stripe_fake import deliver_over_http

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def live_stripe(stripe_on, live_server, settings):
    """Stripe sends the browser back to the live server and delivers webhooks to it."""
    settings.PUBLIC_BASE_URL = live_server.url
    stripe_on.webhook_url = f"{live_server.url}/billing/webhook/"
    return stripe_on


def purchase_card(page: Page):
    modal = page.get_by_role("dialog", name="Upgrade Plan")
    return modal, modal.locator("section.card").filter(has=page.get_by_role("heading", name="Purchase Seats"))


def test_purchase_seats_from_upgrade_plan_to_checkout_and_back(page, live_server, live_stripe, customer):
    log_in(page, live_server, customer)
    expect(page.get_by_test_id("seats-total")).to_have_text("0")
    page.get_by_role("button", name="Upgrade Plan").click()
    modal, card = purchase_card(page)
    expect(modal.get_by_text("Online purchase is not configured")).to_have_count(0)
    activate_heading = modal.get_by_role("heading", name="Activate Key")
    purchase_heading = modal.get_by_role("heading", name="Purchase Seats")
    assert abs(purchase_heading.bounding_box()["y"] - activate_heading.bounding_box()["y"]) < 5  # side by side
    # Prices before paying: per seat, and the total following the seats as they are typed.
    expect(card.get_by_text("FJD 15.00 per seat per month")).to_be_visible()
    expect(card.locator(".price-quote li[data-interval=year] [data-total]")).to_have_text("FJD 150.00")
    card.get_by_label("Seats").fill("3")
    expect(card.locator(".price-quote li[data-interval=year] [data-total]")).to_have_text("FJD 450.00")
    expect(card.get_by_text("Save 17 %")).to_be_visible()
    card.get_by_label("Yearly").check()
    card.get_by_role("button", name="Continue to checkout").click()

    expect(page).to_have_url(re.compile(rf"^{re.escape(live_stripe.url)}/checkout/cs_test_\w+$"))
    expect(page.get_by_role("heading", name="Stripe Checkout (local test server)")).to_be_visible()
    expect(page.get_by_test_id("line")).to_have_text("3 × price_pos_yearly")
    checkout = CheckoutSession.objects.get()
    assert page.url.endswith(checkout.session_id) and checkout.account == customer.account

    page.get_by_role("button", name="Pay").click()
    expect(page).to_have_url(f"{live_server.url}/billing/checkout/success/?session_id={checkout.session_id}")
    expect(page.get_by_text("Payment received: your seats are active.")).to_be_visible()
    expect(page.get_by_test_id("purchased-row")).to_contain_text("3 seats, yearly")
    page.get_by_role("link", name="Go to POS Manager").click()
    expect(page.get_by_test_id("seats-total")).to_have_text("3")


def test_success_page_updates_when_the_completed_checkout_event_arrives(page, live_server, live_stripe, customer):
    live_stripe.webhook_url = ""  # Stripe's event comes after the browser is back
    log_in(page, live_server, customer)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Integrations").click()
    page.get_by_role("button", name="Upgrade Plan").click()
    _modal, card = purchase_card(page)
    card.get_by_label("Tier").select_option("growth")
    card.get_by_label("Seats").fill("2")
    card.get_by_role("button", name="Continue to checkout").click()
    expect(page.get_by_test_id("line")).to_have_text("2 × price_int_growth_monthly")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_text("Waiting for Stripe to confirm your payment…")).to_be_visible()
    mark_page(page)

    [event] = live_stripe.undelivered
    assert event["type"] == "checkout.session.completed"
    assert deliver_over_http(f"{live_server.url}/billing/webhook/", event) == 200
    expect(page.get_by_text("Payment received: your seats are active.")).to_be_visible(timeout=10_000)
    expect(page.get_by_test_id("purchased-row")).to_contain_text("Integrations · Growth: 2 seats, monthly")
    assert_not_reloaded(page)
    assert int_capacity_by_tier(customer.account)["growth"] == 2


def test_a_bad_choice_is_explained_in_the_card(page, live_server, live_stripe, customer):
    log_in(page, live_server, customer)
    page.get_by_role("button", name="Upgrade Plan").click()
    _modal, card = purchase_card(page)
    seats = card.get_by_label("Seats")
    seats.fill("5000")
    seats.evaluate("input => input.removeAttribute('max')")  # past the browser's own check
    card.get_by_role("button", name="Continue to checkout").click()
    expect(card.get_by_role("alert")).to_have_text("Choose between 1 and 1000 seats")
    assert page.url.startswith(live_server.url) and not CheckoutSession.objects.exists()


def test_seat_changes_and_manage_in_stripe(page, live_server, live_stripe, customer):
    buy(live_stripe, customer, seats=3)
    from fiscobridge.pos.services import upload_certificate

    for _ in range(2):
        upload_certificate(account=customer.account, actor=customer.user, data=new_pfx(), password=PFX_PASSWORD)
    row = Subscription.objects.get(account=customer.account, source=Source.STRIPE)
    log_in(page, live_server, customer)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Buy POS License").click()
    expect(page.get_by_test_id("summary-seats")).to_have_text("3")
    seats = page.get_by_label("New number of seats")
    seats.fill("1")
    page.get_by_role("button", name="Update seats").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot go below 2 seats")
    seats.fill("5")
    page.get_by_role("button", name="Update seats").click()
    expect(page.get_by_text("Seats updated: 3 → 5")).to_be_visible()
    expect(page.get_by_test_id("summary-seats")).to_have_text("5")
    expect(page.locator(f"#row-seats-{row.pk}")).to_have_text("5")
    expect(page.get_by_role("link", name="View invoice").first).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Subscriptions").click()
    page.get_by_role("button", name="Manage in Stripe").click()
    expect(page.get_by_role("heading", name="Customer portal (local test server)")).to_be_visible()
    page.get_by_role("link", name="Return").click()
    expect(page).to_have_url(f"{live_server.url}/billing/subscriptions/")
    # Its invoices load after the page: wait for them, so no request is still running at teardown.
    expect(page.locator("#invoices").get_by_role("link", name="View invoice").first).to_be_visible()
