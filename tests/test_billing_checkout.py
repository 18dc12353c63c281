"""Purchase Seats → Stripe Checkout, success and cancel pages, Manage in Stripe; tenancy; no settings."""

import pytest
from django.test import Client

from fiscobridge.audit.models import Event
from fiscobridge.billing.models import CheckoutSession, StripeCustomer
from fiscobridge.subscriptions.models import Source, Subscription
from tests.factories import browser_for, buy, start_checkout_page
from tests.stripe_fake import post_event

NOT_CONFIGURED = "Online purchase is not configured on this server"
BILLING_POSTS = ["/billing/checkout/", "/billing/portal/", "/billing/seats/"]
BILLING_GETS = [
    "/billing/checkout/success/?session_id=cs_x",
    "/billing/checkout/status/?session_id=cs_x",
    "/billing/checkout/cancelled/",
    "/billing/invoices/",
]


# --- without settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/pos/", "/integrations/", "/pos/buy/"])
def test_without_stripe_settings_purchase_seats_explains(customer, path):
    page = browser_for(customer).get(path).content.decode()
    assert NOT_CONFIGURED in page
    assert 'action="/billing/checkout/"' not in page


def test_without_stripe_settings_a_checkout_post_changes_nothing(customer):
    response = browser_for(customer).post("/billing/checkout/", {"product": "pos", "seats": 2, "interval": "month"})
    assert response.status_code == 503
    assert NOT_CONFIGURED in response.content.decode()
    assert not CheckoutSession.objects.exists() and not StripeCustomer.objects.exists()


def test_a_secret_key_without_webhook_secret_is_not_enough(stripe_on, customer, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""  # purchases would never reach the portal
    assert NOT_CONFIGURED in browser_for(customer).get("/pos/").content.decode()


def test_only_configured_plans_are_offered(stripe_on, customer, settings):
    for name in [
        "STRIPE_PRICE_POS_YEARLY",
        "STRIPE_PRICE_INT_STARTER_MONTHLY",
        "STRIPE_PRICE_INT_STARTER_YEARLY",
        "STRIPE_PRICE_INT_SCALE_MONTHLY",
        "STRIPE_PRICE_INT_SCALE_YEARLY",
        "STRIPE_PRICE_INT_GROWTH_YEARLY",
    ]:
        setattr(settings, name, "")
    pos = browser_for(customer).get("/pos/").content.decode()
    assert 'action="/billing/checkout/"' in pos and 'value="month"' in pos and 'value="year"' not in pos
    integrations = browser_for(customer).get("/integrations/").content.decode()
    assert '<option value="growth">Growth</option>' in integrations and 'value="starter"' not in integrations
    refused = browser_for(customer).post("/billing/checkout/", {"product": "pos", "seats": 1, "interval": "year"})
    assert refused.status_code == 422 and "cannot be bought online" in refused.content.decode()
    settings.STRIPE_PRICE_INT_GROWTH_MONTHLY = ""
    assert NOT_CONFIGURED in browser_for(customer).get("/integrations/").content.decode()


# --- the purchase form and Checkout -----------------------------------------------------------------


def test_purchase_form_offers_seats_tier_and_billing_cycle(stripe_on, customer):
    pos = browser_for(customer).get("/pos/").content.decode()
    assert NOT_CONFIGURED not in pos
    assert 'name="seats"' in pos and 'value="month"' in pos and 'value="year"' in pos and "Continue to checkout" in pos
    integrations = browser_for(customer).get("/integrations/").content.decode()
    for tier in ["Starter", "Growth", "Scale"]:
        assert f">{tier}</option>" in integrations
    assert "Continue to checkout" in browser_for(customer).get("/pos/buy/").content.decode()


def test_checkout_creates_a_subscription_mode_session_and_redirects_to_it(stripe_on, customer):
    response = browser_for(customer).post("/billing/checkout/", {"product": "pos", "seats": "4", "interval": "year"})
    assert response.status_code == 303
    assert response["Location"].startswith(f"{stripe_on.url}/checkout/cs_test_")
    checkout = CheckoutSession.objects.get()
    stripe_customer = StripeCustomer.objects.get(account=customer.account)
    [request] = stripe_on.requests_to("POST", "/v1/checkout/sessions")
    params = request.params
    assert params["mode"] == "subscription"
    assert params["customer"] == stripe_customer.customer_id
    assert params["client_reference_id"] == str(customer.account.pk)
    assert params["line_items"] == [{"price": "price_pos_yearly", "quantity": "4"}]
    assert params["metadata"]["account_id"] == str(customer.account.pk)
    assert params["subscription_data"]["metadata"]["product"] == "pos"
    assert params["success_url"] == "http://testserver/billing/checkout/success/?session_id={CHECKOUT_SESSION_ID}"
    assert params["cancel_url"] == "http://testserver/billing/checkout/cancelled/?product=pos"
    assert (checkout.account, checkout.product, checkout.seats, checkout.interval, checkout.completed_at) == (
        customer.account,
        "pos",
        4,
        "year",
        None,
    )
    assert response["Location"].endswith(checkout.session_id)
    assert Event.objects.filter(action="billing.checkout_started", account=customer.account).count() == 1
    # Nothing is granted before Stripe says the payment went through.
    assert not Subscription.objects.filter(source=Source.STRIPE).exists()


def test_one_stripe_customer_per_account(stripe_on, customer, teammate):
    start_checkout_page(customer)
    start_checkout_page(teammate, product="int", tier="scale")
    assert StripeCustomer.objects.count() == 1
    assert len(stripe_on.requests_to("POST", "/v1/customers")) == 1
    assert len(stripe_on.requests_to("POST", "/v1/checkout/sessions")) == 2
    int_session = stripe_on.requests_to("POST", "/v1/checkout/sessions")[1].params
    assert int_session["line_items"] == [{"price": "price_int_scale_monthly", "quantity": "3"}]


def test_htmx_checkout_answers_with_a_client_side_redirect(stripe_on, customer):
    response = browser_for(customer).post(
        "/billing/checkout/",
        {"product": "int", "tier": "starter", "seats": 2, "interval": "month"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith(f"{stripe_on.url}/checkout/cs_test_")


@pytest.mark.parametrize(
    "choice, message",
    [
        ({"seats": "0"}, "Choose between 1 and 1000 seats"),
        ({"seats": "1001"}, "Choose between 1 and 1000 seats"),
        ({"seats": "three"}, "Choose between 1 and 1000 seats"),
        ({"interval": "week"}, "cannot be bought online"),
        ({"product": "int", "tier": "platinum"}, "cannot be bought online"),
        ({"product": "int", "tier": ""}, "cannot be bought online"),
    ],
)
def test_bad_choices_are_refused_before_stripe(stripe_on, customer, choice, message):
    data = {"product": "pos", "tier": "", "seats": "2", "interval": "month", **choice}
    response = browser_for(customer).post("/billing/checkout/", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and message in response.content.decode()
    assert 'role="alert"' in response.content.decode()
    assert not stripe_on.requests_to("POST", "/v1/checkout/sessions") and not CheckoutSession.objects.exists()


def test_stripe_refusing_the_session_leaves_no_checkout(stripe_on, customer):
    stripe_on.fail_next("POST", "/v1/checkout/sessions")
    response = browser_for(customer).post("/billing/checkout/", {"product": "pos", "seats": 2, "interval": "month"})
    assert response.status_code == 503
    assert "Stripe could not be reached. Nothing was changed" in response.content.decode()
    assert not CheckoutSession.objects.exists()
    assert not Event.objects.filter(action="billing.checkout_started").exists()


def test_stripe_unreachable_leaves_nothing(stripe_on, customer, settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    response = browser_for(customer).post(
        "/billing/checkout/", {"product": "pos", "seats": 2, "interval": "month"}, HTTP_HX_REQUEST="true"
    )
    assert "Stripe could not be reached" in response.content.decode()
    assert not StripeCustomer.objects.exists() and not CheckoutSession.objects.exists()


# --- success and cancel pages ---------------------------------------------------------------------


def test_success_page_waits_for_the_webhook_then_shows_the_seats(stripe_on, customer):
    session_id = start_checkout_page(customer, seats=3)
    browser = browser_for(customer)
    waiting = browser.get(f"/billing/checkout/success/?session_id={session_id}").content.decode()
    assert "Waiting for Stripe to confirm your payment" in waiting and 'hx-trigger="every 2s"' in waiting
    event = stripe_on.complete_checkout(session_id)
    assert post_event(Client(), event).status_code == 200
    status = browser.get(f"/billing/checkout/status/?session_id={session_id}")
    assert status["HX-Trigger"] == "seats-changed"
    page = browser.get(f"/billing/checkout/success/?session_id={session_id}").content.decode()
    assert "Payment received: your seats are active." in page and "3 seats, monthly" in page
    assert "every 2s" not in page


def test_cancel_page_says_nothing_was_charged(customer):
    page = browser_for(customer).get("/billing/checkout/cancelled/?product=int").content.decode()
    assert "Nothing was charged" in page and 'href="/integrations/?upgrade=1"' in page


# --- Manage in Stripe --------------------------------------------------------------------------


def test_manage_in_stripe_opens_the_customer_portal_of_this_account(stripe_on, customer):
    buy(stripe_on, customer, seats=2)
    page = browser_for(customer).get("/billing/subscriptions/").content.decode()
    assert (
        'action="/billing/portal/"' in page
        and "Manage in Stripe</button>" in page
        and "disabled" not in page.split('action="/billing/portal/"')[1][:200]
    )
    assert "Renews monthly" in page and 'class="chip stripe"' in page
    response = browser_for(customer).post("/billing/portal/")
    assert response.status_code == 303 and response["Location"].startswith(f"{stripe_on.url}/portal/bps_")
    [request] = stripe_on.requests_to("POST", "/v1/billing_portal/sessions")
    assert request.params == {
        "customer": StripeCustomer.objects.get(account=customer.account).customer_id,
        "return_url": "http://testserver/billing/subscriptions/",
    }
    assert Event.objects.filter(action="billing.portal_opened", account=customer.account).exists()


def test_manage_in_stripe_is_disabled_without_settings(stripe_on, customer, settings):
    buy(stripe_on, customer, seats=1)
    settings.STRIPE_SECRET_KEY = ""
    page = browser_for(customer).get("/billing/subscriptions/").content.decode()
    assert 'title="Online billing is not configured on this server">Manage in Stripe' in page
    response = browser_for(customer).post("/billing/portal/")
    assert response.status_code == 503


# --- tenancy ------------------------------------------------------------------------------------


def test_another_account_cannot_see_or_manage_this_accounts_billing(stripe_on, customer, outsider):
    session_id = start_checkout_page(customer)
    other = browser_for(outsider)
    assert other.get(f"/billing/checkout/success/?session_id={session_id}").status_code == 404
    assert other.get(f"/billing/checkout/status/?session_id={session_id}").status_code == 404
    # The outsider never bought: there is no portal for them, and never the customer's.
    response = other.post("/billing/portal/")
    assert response.status_code == 404 and "nothing to manage in Stripe" in response.content.decode()
    assert not stripe_on.requests_to("POST", "/v1/billing_portal/sessions")
    # A checkout by the outsider is for the outsider's own Stripe customer, whatever it posts.
    other.post(
        "/billing/checkout/",
        {"product": "pos", "seats": 1, "interval": "month", "account": customer.account.pk, "customer": "cus_x"},
    )
    mine, theirs = (
        StripeCustomer.objects.get(account=customer.account),
        StripeCustomer.objects.get(account=outsider.account),
    )
    last = stripe_on.requests_to("POST", "/v1/checkout/sessions")[-1].params
    assert last["customer"] == theirs.customer_id != mine.customer_id
    assert last["client_reference_id"] == str(outsider.account.pk)


@pytest.mark.parametrize("path", BILLING_POSTS)
def test_anonymous_billing_posts_go_to_login(anonymous, path):
    response = anonymous.post(path, {})
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
    htmx = anonymous.post(path, {}, HTTP_HX_REQUEST="true")
    assert htmx.status_code == 204 and htmx["HX-Redirect"] == "/login/"


@pytest.mark.parametrize("path", BILLING_GETS)
def test_anonymous_billing_pages_go_to_login(anonymous, path):
    response = anonymous.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("path", BILLING_POSTS)
def test_partners_and_staff_cannot_buy(stripe_on, reseller, staff, path):
    for persona in (reseller, staff):
        response = browser_for(persona).post(path, {"product": "pos", "seats": 1, "interval": "month"})
        assert response.status_code == 403
    assert not stripe_on.requests_to("POST", "/v1/checkout/sessions")
    assert not stripe_on.requests_to("POST", "/v1/customers")


def test_billing_pages_refuse_the_wrong_method(customer):
    browser = browser_for(customer)
    assert browser.get("/billing/checkout/").status_code == 405
    assert browser.get("/billing/portal/").status_code == 405
    assert browser.post("/billing/invoices/").status_code == 405
