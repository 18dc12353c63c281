"""Who may call what (SPEC 1, 5.2): another tenant's object is 404, the wrong kind of user is 403,
nobody is 401 — always with the error body — and the browser session needs its CSRF token."""

import pytest
from django.http import HttpRequest
from django.test import Client

from fiscobridge.accounts.models import ApiToken
from fiscobridge.accounts.services import revoke_api_token
from fiscobridge.audit.models import Event
from fiscobridge.keys.models import ActivationKey, KeyBatch, KeyStatus, RedeemAttempt
from fiscobridge.subscriptions.models import Subscription
from tests.factories import PASSWORD, activate, assert_error, post_json, revoke_url, unknown_code

VALIDATE = "/api/v1/keys/validate"
ACTIVATE = "/api/v1/keys/activate"
SUBSCRIPTIONS = "/api/v1/subscriptions"
PARTNER_KEYS = "/api/v1/partner/keys"
LOOKUP = "/api/v1/partner/keys/lookup"

CUSTOMER_ENDPOINTS = ["validate", "activate", "subscriptions"]
PARTNER_ENDPOINTS = ["issue", "list", "lookup", "revoke"]
ALL_ENDPOINTS = CUSTOMER_ENDPOINTS + PARTNER_ENDPOINTS


def call(client: Client, endpoint: str, *, code: str = "", key_id: int = 0, **extra):
    """One well-formed request to an endpoint (so that only who is asking can make it fail)."""
    if endpoint == "validate":
        return post_json(client, VALIDATE, {"key": code, "product": "pos"}, **extra)
    if endpoint == "activate":
        return post_json(client, ACTIVATE, {"key": code, "product": "pos"}, **extra)
    if endpoint == "subscriptions":
        return client.get(SUBSCRIPTIONS, **extra)
    if endpoint == "issue":
        return post_json(client, PARTNER_KEYS, {"product": "pos", "seats": 1, "months": 1, "quantity": 2}, **extra)
    if endpoint == "list":
        return client.get(PARTNER_KEYS, **extra)
    if endpoint == "lookup":
        return post_json(client, LOOKUP, {"key": code}, **extra)
    if endpoint == "revoke":
        return post_json(client, revoke_url(key_id), {"reason": "lost in the mail"}, **extra)
    raise AssertionError(endpoint)


def world() -> dict:
    return {
        "keys": list(ActivationKey.objects.order_by("pk").values_list("pk", "status", "activated_account_id")),
        "batches": KeyBatch.objects.count(),
        "subscriptions": Subscription.objects.count(),
        "attempts": RedeemAttempt.objects.count(),
        "events": Event.objects.count(),
    }


# --- partner against partner: 404, never 403 --------------------------------------------------


def test_partner_cannot_revoke_another_partners_key(reseller, other_reseller, key_row):
    before = world()
    response = call(other_reseller.client, "revoke", key_id=key_row.pk)
    assert_error(response, 404, "not_found")
    assert world() == before
    key_row.refresh_from_db()
    assert key_row.status == KeyStatus.AVAILABLE and key_row.revoked_at is None


def test_revoking_another_partners_key_looks_like_revoking_a_key_that_does_not_exist(other_reseller, key_row):
    theirs = call(other_reseller.client, "revoke", key_id=key_row.pk)
    missing = call(other_reseller.client, "revoke", key_id=key_row.pk + 1000)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()


@pytest.mark.parametrize("state", ["activated", "revoked"])
def test_partner_gets_404_not_409_for_another_partners_used_key(
    reseller, other_reseller, customer, key_row, code, state
):
    if state == "activated":
        assert activate(customer, code).status_code == 201
    else:
        assert call(reseller.client, "revoke", key_id=key_row.pk).status_code == 200
    before = world()
    assert_error(call(other_reseller.client, "revoke", key_id=key_row.pk), 404, "not_found")
    assert_error(call(other_reseller.client, "lookup", code=code), 404, "not_found")
    assert world() == before


def test_partner_cannot_look_up_another_partners_key(reseller, other_reseller, code, key_row):
    before = world()
    theirs = call(other_reseller.client, "lookup", code=code)
    assert_error(theirs, 404, "not_found")
    missing = call(other_reseller.client, "lookup", code=unknown_code(code))
    assert theirs.json() == missing.json()  # no oracle: the same answer as for a key nobody issued
    assert code not in theirs.content.decode()
    assert world() == before
    own = call(reseller.client, "lookup", code=code)
    assert own.status_code == 200 and own.json()["id"] == key_row.pk


def test_partner_list_shows_only_its_own_keys(reseller, other_reseller, issue):
    issue(quantity=3)
    issue(quantity=2, partner=other_reseller.partner)
    mine = set(ActivationKey.objects.filter(partner=reseller.partner).values_list("pk", flat=True))
    theirs = set(ActivationKey.objects.filter(partner=other_reseller.partner).values_list("pk", flat=True))
    assert len(mine) == 3 and len(theirs) == 2

    assert {item["id"] for item in call(reseller.client, "list").json()["items"]} == mine
    assert {item["id"] for item in call(other_reseller.client, "list").json()["items"]} == theirs


def test_partner_list_filters_never_reach_another_partners_keys(reseller, other_reseller, issue):
    issue(quantity=2, reference="acme order 1")
    key = ActivationKey.objects.filter(partner=reseller.partner).first()
    for params in (
        {"batch": key.batch_id},
        {"q": key.last_group},
        {"q": "acme"},
        {"status": "available"},
        {"product": "pos"},
        {"limit": 200},
    ):
        response = other_reseller.client.get(PARTNER_KEYS, params)
        assert response.status_code == 200, params
        assert response.json() == {"items": [], "next_cursor": None}, params


def test_partner_cursor_from_another_partner_shows_only_own_keys(reseller, other_reseller, issue):
    issue(quantity=3)
    issue(quantity=3, partner=other_reseller.partner)
    page = reseller.client.get(PARTNER_KEYS, {"limit": 1}).json()
    assert page["next_cursor"]
    response = other_reseller.client.get(PARTNER_KEYS, {"cursor": page["next_cursor"]})
    assert response.status_code == 200
    ids = {item["id"] for item in response.json()["items"]}
    assert ids <= set(ActivationKey.objects.filter(partner=other_reseller.partner).values_list("pk", flat=True))


# --- the wrong kind of user: 403 ---------------------------------------------------------------


@pytest.mark.parametrize("endpoint", PARTNER_ENDPOINTS)
def test_customer_gets_403_on_every_partner_endpoint(customer, teammate, key_row, code, endpoint):
    for persona in (customer, teammate):
        before = world()
        response = call(persona.client, endpoint, code=code, key_id=key_row.pk)
        assert_error(response, 403, "forbidden")
        assert code not in response.content.decode()
        assert world() == before
    key_row.refresh_from_db()
    assert key_row.status == KeyStatus.AVAILABLE


@pytest.mark.parametrize("endpoint", CUSTOMER_ENDPOINTS)
def test_partner_gets_403_on_every_customer_endpoint(reseller, other_reseller, key_row, code, endpoint):
    for persona in (reseller, other_reseller):
        before = world()
        response = call(persona.client, endpoint, code=code)
        assert_error(response, 403, "forbidden")
        assert code not in response.content.decode()
        assert world() == before  # no attempt recorded, nothing activated
    key_row.refresh_from_db()
    assert key_row.status == KeyStatus.AVAILABLE


# --- nobody: 401 -------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ALL_ENDPOINTS)
def test_anonymous_gets_401_with_error_body_on_every_endpoint(anonymous, key_row, code, endpoint):
    before = world()
    response = call(anonymous, endpoint, code=code, key_id=key_row.pk)
    assert_error(response, 401, "unauthenticated")
    assert code not in response.content.decode()
    assert world() == before


@pytest.mark.parametrize("url", [VALIDATE, ACTIVATE, PARTNER_KEYS, LOOKUP, revoke_url(1)])
def test_anonymous_gets_401_before_the_body_is_looked_at(db, anonymous, url):
    response = anonymous.post(url, data="{not json", content_type="application/json")
    assert_error(response, 401, "unauthenticated")


@pytest.mark.parametrize("endpoint", ALL_ENDPOINTS)
def test_revoked_api_token_gets_401(customer, reseller, key_row, code, endpoint):
    persona = customer if endpoint in CUSTOMER_ENDPOINTS else reseller
    assert call(persona.client, "subscriptions" if persona is customer else "list").status_code == 200
    revoke_api_token(token=ApiToken.objects.get(user=persona.user), actor=persona.user)
    before = world()
    response = call(persona.client, endpoint, code=code, key_id=key_row.pk)
    assert_error(response, 401, "unauthenticated")
    assert world() == before


def test_token_of_a_deactivated_user_gets_401(customer):
    customer.user.is_active = False
    customer.user.save(update_fields=["is_active"])
    assert_error(call(customer.client, "subscriptions"), 401, "unauthenticated")


def test_token_with_a_wrong_secret_gets_401(customer):
    forged = customer.token[:-4] + ("AAAA" if not customer.token.endswith("AAAA") else "BBBB")
    response = Client(HTTP_AUTHORIZATION=f"Bearer {forged}").get(SUBSCRIPTIONS)
    assert_error(response, 401, "unauthenticated")


# --- one account, several users; other accounts see nothing --------------------------------


@pytest.fixture
def customer_with_subscriptions(customer, issue):
    assert activate(customer, issue()[0]).status_code == 201
    assert activate(customer, issue(product="int", tier="growth", seats=3)[0], product="int").status_code == 201
    return customer


def test_teammate_sees_the_same_subscriptions_as_customer(customer_with_subscriptions, teammate):
    mine = call(customer_with_subscriptions.client, "subscriptions").json()
    theirs = call(teammate.client, "subscriptions").json()
    assert theirs == mine
    assert len(mine["pos"]["subscriptions"]) == 1 and mine["pos"]["seats_total"] == 2
    assert len(mine["int"]["subscriptions"]) == 1 and mine["int"]["tiers"]["growth"]["seats_total"] == 3


def test_outsider_sees_none_of_customers_subscriptions(customer_with_subscriptions, outsider):
    body = call(outsider.client, "subscriptions").json()
    assert body["pos"]["subscriptions"] == [] and body["pos"]["seats_total"] == 0
    assert body["int"]["subscriptions"] == []
    assert all(tier["seats_total"] == 0 for tier in body["int"]["tiers"].values())
    assert body["int"]["trial"] is not None  # the outsider's own free allowance, nothing of the customer's


def test_teammate_activation_adds_to_the_shared_account(customer, teammate, issue):
    assert activate(teammate, issue()[0]).status_code == 201
    assert call(customer.client, "subscriptions").json()["pos"]["seats_total"] == 2


@pytest.mark.parametrize("url", [VALIDATE, ACTIVATE])
def test_outsider_using_a_key_the_customer_activated_gets_not_available(customer, outsider, code, url):
    assert activate(customer, code).status_code == 201
    response = post_json(outsider.client, url, {"key": code, "product": "pos"})
    error = assert_error(response, 409, "not_available")
    assert error["message"] == "This activation key is not available"
    assert code not in response.content.decode()
    # Exactly the answer for a key that never existed: nobody learns it was used elsewhere.
    never = post_json(outsider.client, url, {"key": unknown_code(code), "product": "pos"})
    assert never.json() == response.json()
    assert Subscription.objects.filter(account=outsider.account).count() == 0
    assert RedeemAttempt.objects.filter(account=outsider.account, failed=True).count() == 2


@pytest.mark.parametrize("url", [VALIDATE, ACTIVATE])
def test_customer_and_teammate_see_already_activated_for_their_own_key(customer, teammate, code, url):
    assert activate(customer, code).status_code == 201
    for persona in (customer, teammate):
        response = post_json(persona.client, url, {"key": code, "product": "pos"})
        assert_error(response, 409, "already_activated")
    assert Subscription.objects.count() == 1


def test_renewing_another_accounts_subscription_looks_like_an_unknown_one(customer, outsider, issue):
    assert activate(outsider, issue()[0]).status_code == 201
    theirs = Subscription.objects.get(account=outsider.account)
    code = issue()[0]
    response = post_json(customer.client, ACTIVATE, {"key": code, "product": "pos", "renew": theirs.pk})
    error = assert_error(response, 400, "invalid_renewal")
    missing = post_json(customer.client, ACTIVATE, {"key": code, "product": "pos", "renew": theirs.pk + 1000})
    assert missing.json()["error"]["code"] == error["code"] and missing.json()["error"]["message"] == error["message"]
    assert Subscription.objects.filter(account=customer.account).count() == 0
    theirs.refresh_from_db()
    assert not Subscription.objects.filter(renews=theirs).exists()


# --- the browser session ----------------------------------------------------------------------


def session_client(user, *, login="force") -> Client:
    client = Client(enforce_csrf_checks=True)
    if login == "force":
        client.force_login(user)
    else:
        assert client.login(request=HttpRequest(), username=user.email, password=PASSWORD)
    return client


def csrf_token(client: Client) -> str:
    client.get("/admin/login/")  # any page that renders a form sets the CSRF cookie
    return client.cookies["csrftoken"].value


@pytest.mark.parametrize("login", ["force", "password"])
def test_session_login_reads_subscriptions(customer_with_subscriptions, login):
    client = session_client(customer_with_subscriptions.user, login=login)
    response = client.get(SUBSCRIPTIONS)
    assert response.status_code == 200
    assert response.json() == call(customer_with_subscriptions.client, "subscriptions").json()


def test_wrong_password_gives_no_session(customer):
    client = Client()
    assert not client.login(request=HttpRequest(), username=customer.user.email, password="not-the-password")
    assert_error(client.get(SUBSCRIPTIONS), 401, "unauthenticated")


def test_logged_out_session_gets_401(customer):
    client = session_client(customer.user)
    client.logout()
    assert_error(client.get(SUBSCRIPTIONS), 401, "unauthenticated")


@pytest.mark.parametrize("endpoint", ["validate", "activate", "issue", "lookup", "revoke"])
def test_session_post_without_csrf_token_is_rejected(customer, reseller, key_row, code, endpoint):
    user = customer.user if endpoint in CUSTOMER_ENDPOINTS else reseller.user
    client = session_client(user)
    csrf_token(client)  # the cookie alone is not enough: the header must carry the token
    before = world()
    response = call(client, endpoint, code=code, key_id=key_row.pk)
    assert_error(response, 403, "forbidden")
    assert world() == before
    key_row.refresh_from_db()
    assert key_row.status == KeyStatus.AVAILABLE


@pytest.mark.parametrize("endpoint", ["validate", "activate", "issue", "lookup", "revoke"])
def test_session_post_with_a_wrong_csrf_token_is_rejected(customer, reseller, key_row, code, endpoint):
    user = customer.user if endpoint in CUSTOMER_ENDPOINTS else reseller.user
    client = session_client(user)
    csrf_token(client)
    before = world()
    response = call(client, endpoint, code=code, key_id=key_row.pk, HTTP_X_CSRFTOKEN="x" * 32)
    assert_error(response, 403, "forbidden")
    assert world() == before


def test_customer_session_with_csrf_token_validates_and_activates(customer, code):
    client = session_client(customer.user, login="password")
    token = csrf_token(client)
    validated = call(client, "validate", code=code, HTTP_X_CSRFTOKEN=token)
    assert validated.status_code == 200 and validated.json()["seats"] == 2
    activated = call(client, "activate", code=code, HTTP_X_CSRFTOKEN=token)
    assert activated.status_code == 201
    assert Subscription.objects.get().account == customer.account


def test_partner_session_with_csrf_token_issues_looks_up_and_revokes(reseller, key_row, code):
    client = session_client(reseller.user)
    token = csrf_token(client)
    issued = call(client, "issue", HTTP_X_CSRFTOKEN=token)
    assert issued.status_code == 201 and len(issued.json()["keys"]) == 2
    assert call(client, "lookup", code=code, HTTP_X_CSRFTOKEN=token).json()["id"] == key_row.pk
    revoked = call(client, "revoke", key_id=key_row.pk, HTTP_X_CSRFTOKEN=token)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"


def test_partner_session_cannot_touch_another_partners_key(reseller, other_reseller, key_row, code):
    client = session_client(other_reseller.user)
    token = csrf_token(client)
    assert_error(call(client, "revoke", key_id=key_row.pk, HTTP_X_CSRFTOKEN=token), 404, "not_found")
    assert_error(call(client, "lookup", code=code, HTTP_X_CSRFTOKEN=token), 404, "not_found")


def test_bearer_token_needs_no_csrf_token(customer, code):
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {customer.token}")
    assert call(client, "validate", code=code).status_code == 200
    assert call(client, "activate", code=code).status_code == 201
