"""Seat changes on Buy POS License (proration, never below the seats in use, nothing partial),
Stripe invoices, and keys and Stripe side by side."""

import pytest
from django.test import Client

from fiscobridge.audit.models import Event
from fiscobridge.billing.models import StripeCustomer
from fiscobridge.pos.services import upload_certificate
from fiscobridge.subscriptions.capacity import pos_capacity
from fiscobridge.subscriptions.models import Source, Status, Subscription
from tests.factories import PFX_PASSWORD, bearer_client, browser_for, buy, new_pfx, post_json, run_at_once, upload_pfx
from tests.stripe_fake import make_event, post_event

UPDATE = r"/v1/subscriptions/sub_\w+"


def stripe_row(account) -> Subscription:
    return Subscription.objects.get(account=account, source=Source.STRIPE)


def add_certificates(persona, count: int) -> None:
    for _ in range(count):
        upload_certificate(account=persona.account, actor=persona.user, data=new_pfx(), password=PFX_PASSWORD)


def change(persona, row, seats):
    return browser_for(persona).post(
        "/billing/seats/", {"subscription": row.pk, "seats": seats}, HTTP_HX_REQUEST="true"
    )


def remote_quantity(fake, row) -> int:
    return fake.subscription(row.stripe_subscription_id)["items"]["data"][0]["quantity"]


def test_adding_seats_invoices_the_proration_now(stripe_on, customer):
    buy(stripe_on, customer, seats=3)
    row = stripe_row(customer.account)
    response = change(customer, row, 5)
    body = response.content.decode()
    assert response.status_code == 200 and "Seats updated: 3 →" in body and "charges it now" in body
    assert response["HX-Trigger"] == "seats-changed"
    assert f'id="row-seats-{row.pk}" hx-swap-oob="true">5<' in body
    [request] = stripe_on.requests_to("POST", UPDATE)
    assert request.path == f"/v1/subscriptions/{row.stripe_subscription_id}"
    assert request.params["items"] == [{"id": row.stripe_item_id, "quantity": "5"}]
    assert request.params["proration_behavior"] == "always_invoice"
    assert request.params["payment_behavior"] == "error_if_incomplete"
    row.refresh_from_db()
    assert row.seats == 5 and remote_quantity(stripe_on, row) == 5 and pos_capacity(customer.account) == 5
    changed = Event.objects.get(action="subscription.changed")
    assert changed.actor == customer.user and changed.details["seats"] == [3, 5]
    # The webhook that follows finds nothing left to change.
    remote = stripe_on.subscription(row.stripe_subscription_id)
    assert post_event(Client(), make_event("customer.subscription.updated", remote)).status_code == 200
    assert Event.objects.filter(action="subscription.changed").count() == 1


def test_removing_seats_credits_the_next_invoice(stripe_on, customer):
    buy(stripe_on, customer, seats=3)
    add_certificates(customer, 2)
    row = stripe_row(customer.account)
    body = change(customer, row, 2).content.decode()
    assert "credit on your next invoice" in body
    [request] = stripe_on.requests_to("POST", UPDATE)
    assert request.params["proration_behavior"] == "create_prorations"
    row.refresh_from_db()
    assert row.seats == 2 and remote_quantity(stripe_on, row) == 2


def test_removing_seats_below_the_seats_in_use_is_refused(stripe_on, customer):
    buy(stripe_on, customer, seats=3)
    add_certificates(customer, 2)
    row = stripe_row(customer.account)
    response = change(customer, row, 1)
    body = response.content.decode()
    assert 'data-error-code="seats_in_use"' in body
    assert "2 seats are in use, so this subscription cannot go below 2 seats" in body
    assert not stripe_on.requests_to("POST", UPDATE)
    row.refresh_from_db()
    assert row.seats == 3 and remote_quantity(stripe_on, row) == 3
    assert not Event.objects.filter(action="subscription.changed").exists()


def test_seats_from_a_key_count_towards_what_may_be_removed(stripe_on, customer, issue):
    [code] = issue(seats=2)
    assert post_json(customer.client, "/api/v1/keys/activate", {"key": code, "product": "pos"}).status_code == 201
    buy(stripe_on, customer, seats=3)
    add_certificates(customer, 4)
    row = stripe_row(customer.account)
    assert 'data-error-code="seats_in_use"' in change(customer, row, 1).content.decode()
    assert "Seats updated" in change(customer, row, 2).content.decode()
    assert pos_capacity(customer.account) == 4


def test_a_declined_card_changes_nothing(stripe_on, customer):
    buy(stripe_on, customer, seats=3)
    row = stripe_row(customer.account)
    stripe_on.decline_next("POST", UPDATE)
    body = change(customer, row, 6).content.decode()
    assert "Stripe declined the change: Your card was declined. Nothing was changed." in body
    row.refresh_from_db()
    assert row.seats == 3 and remote_quantity(stripe_on, row) == 3 and pos_capacity(customer.account) == 3
    assert not Event.objects.filter(action="subscription.changed").exists()


def test_stripe_unreachable_changes_nothing(stripe_on, customer, settings):
    buy(stripe_on, customer, seats=3)
    row = stripe_row(customer.account)
    stripe_on.fail_next("POST", UPDATE, status=500)
    assert "Stripe could not be reached. Nothing was changed" in change(customer, row, 4).content.decode()
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    assert "Stripe could not be reached" in change(customer, row, 4).content.decode()
    row.refresh_from_db()
    assert row.seats == 3 and remote_quantity(stripe_on, row) == 3


@pytest.mark.parametrize("seats", ["0", "1001", "x", ""])
def test_bad_seat_numbers_are_refused(stripe_on, customer, seats):
    buy(stripe_on, customer, seats=3)
    row = stripe_row(customer.account)
    assert "Choose between 1 and 1000 seats" in change(customer, row, seats).content.decode()
    assert not stripe_on.requests_to("POST", UPDATE)


def test_a_past_due_or_cancelled_subscription_cannot_change_seats(stripe_on, customer):
    buy(stripe_on, customer, seats=3)
    row = stripe_row(customer.account)
    Subscription.objects.filter(pk=row.pk).update(stripe_status="past_due")
    assert "unpaid invoice" in change(customer, row, 4).content.decode()
    stripe_on.stripe().v1.subscriptions.cancel(row.stripe_subscription_id)
    [deleted] = stripe_on.events("customer.subscription.deleted")
    assert post_event(Client(), deleted).status_code == 200
    row.refresh_from_db()
    assert row.status == Status.CANCELLED
    assert 'data-error-code="subscription_not_changeable"' in change(customer, row, 4).content.decode()
    assert not stripe_on.requests_to("POST", UPDATE)


def test_another_account_cannot_change_this_accounts_seats(stripe_on, customer, outsider, issue):
    buy(stripe_on, customer, seats=3)
    row = stripe_row(customer.account)
    assert change(outsider, row, 1).status_code == 404
    assert change(outsider, row, 10).status_code == 404
    [code] = issue(seats=2)
    post_json(customer.client, "/api/v1/keys/activate", {"key": code, "product": "pos"})
    key_row = Subscription.objects.get(account=customer.account, source=Source.KEY)
    assert change(customer, key_row, 5).status_code == 404  # keys have no Stripe quantity
    assert change(customer, type("Row", (), {"pk": "nope"}), 5).status_code == 404
    assert not stripe_on.requests_to("POST", UPDATE)
    row.refresh_from_db()
    assert row.seats == 3


def test_buy_pos_license_shows_the_stripe_plan_and_seat_change(stripe_on, customer, issue):
    [code] = issue(seats=2)
    post_json(customer.client, "/api/v1/keys/activate", {"key": code, "product": "pos"})
    buy(stripe_on, customer, seats=3, interval="year")
    page = browser_for(customer).get("/pos/buy/").content.decode()
    assert "Stripe subscription and prepaid key" in page
    assert "Stripe, yearly" in page and "3 seats, renews " in page
    assert 'data-testid="summary-seats">5<' in page
    assert "Update seats" in page and 'hx-get="/billing/invoices/"' in page


# --- invoices -------------------------------------------------------------------------------------


def test_invoices_are_listed_with_their_hosted_links(stripe_on, customer, outsider):
    buy(stripe_on, customer, seats=3)
    customer_id = StripeCustomer.objects.get(account=customer.account).customer_id
    [invoice] = stripe_on.stripe().v1.invoices.list({"customer": customer_id}).data
    page = browser_for(customer).get("/billing/invoices/").content.decode()
    assert f'href="{stripe_on.url}/invoices/{invoice.id}"' in page and "View invoice" in page
    assert "FJD 45.00" in page and "Paid" in page  # Cloud POS is priced in Fiji dollars (stripe_fake)
    [request] = stripe_on.requests_to("GET", "/v1/invoices")
    assert request.params["customer"] == customer_id
    # Another account sees its own (none), never these.
    other = browser_for(outsider).get("/billing/invoices/").content.decode()
    assert "No invoices yet." in other and invoice.id not in other
    assert len(stripe_on.requests_to("GET", "/v1/invoices")) == 1


def test_invoices_panel_survives_stripe_being_down(stripe_on, customer, settings):
    buy(stripe_on, customer, seats=1)
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    response = browser_for(customer).get("/billing/invoices/")
    assert response.status_code == 200 and "Stripe could not be reached" in response.content.decode()
    assert browser_for(customer).get("/billing/subscriptions/").status_code == 200


# --- keys and Stripe side by side ------------------------------------------------------------------


def test_keys_and_stripe_subscriptions_add_up_and_either_can_go(stripe_on, customer, issue):
    [code] = issue(seats=2)
    post_json(customer.client, "/api/v1/keys/activate", {"key": code, "product": "pos"})
    subscription_id = buy(stripe_on, customer, seats=3)
    assert pos_capacity(customer.account) == 5
    api = customer.client.get("/api/v1/subscriptions").json()["pos"]
    assert api["seats_total"] == 5
    assert sorted(s["source"] for s in api["subscriptions"]) == ["key", "stripe"]
    # Leaving Stripe keeps the key's seats; buying again later works the same way.
    stripe_on.stripe().v1.subscriptions.cancel(subscription_id)
    [deleted] = stripe_on.events("customer.subscription.deleted")
    assert post_event(Client(), deleted).status_code == 200
    assert pos_capacity(customer.account) == 2
    buy(stripe_on, customer, seats=1)
    assert pos_capacity(customer.account) == 3
    page = browser_for(customer).get("/billing/subscriptions/").content.decode()
    assert "Ended subscriptions (1)" in page


# --- concurrency: a seat decrease and an upload never both win -----------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_decrease_and_an_upload_racing_for_the_last_seat_never_both_win(stripe_on, customer):
    buy(stripe_on, customer, seats=3)
    add_certificates(customer, 2)
    row = stripe_row(customer.account)
    browser = browser_for(customer)
    api = bearer_client(customer.user)
    pfx = new_pfx()

    def decrease():
        return browser.post("/billing/seats/", {"subscription": row.pk, "seats": 2}, HTTP_HX_REQUEST="true")

    def upload():
        return upload_pfx(api, pfx)

    decreased, uploaded = run_at_once([decrease, upload])
    decrease_won = "Seats updated" in decreased.content.decode()
    upload_won = uploaded.status_code == 201
    assert decrease_won != upload_won, (decreased.content[:300], uploaded.content[:300])
    row.refresh_from_db()
    used = customer.account.certificates.filter(status="active").count()
    assert used <= pos_capacity(customer.account)
    assert (row.seats, used) == ((2, 2) if decrease_won else (3, 3))
    assert remote_quantity(stripe_on, row) == row.seats
