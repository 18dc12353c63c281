"""Partner key endpoints (SPEC 5.2): issue, list with keyset pagination, lookup, revoke."""

from datetime import timedelta

import time_machine

from fiscobridge.audit.models import Event
from fiscobridge.core import clock
from fiscobridge.keys.codes import normalize
from fiscobridge.keys.models import ActivationKey, KeyBatch
from tests.factories import post_json

KEYS = "/api/v1/partner/keys"


def issue_api(persona, **body):
    payload = {"product": "pos", "seats": 2, "months": 12, "quantity": 3, **body}
    return post_json(persona.client, KEYS, payload)


def test_issue_returns_the_codes_once(reseller):
    response = issue_api(reseller, quantity=5, reference="Order 1042")
    assert response.status_code == 201
    body = response.json()
    assert body["batch"]["quantity"] == 5 and body["batch"]["reference"] == "Order 1042"
    assert body["batch"]["tier"] is None
    codes = [k["code"] for k in body["keys"]]
    assert len(set(codes)) == 5 and all(normalize(c) == c and c.startswith("POS-") for c in codes)
    assert {k["id"] for k in body["keys"]} == set(ActivationKey.objects.values_list("id", flat=True))
    # Afterwards nothing ever shows a code again: listing and lookup give hints only.
    listing = reseller.client.get(KEYS).content.decode()
    assert not any(code in listing or code[4:] in listing for code in codes)
    event = Event.objects.get(action="key.issued")
    assert event.partner == reseller.partner and event.details["quantity"] == 5


def test_issue_integrations_keys_needs_a_tier(reseller):
    response = issue_api(reseller, product="int")
    assert response.status_code == 422
    assert response.json()["error"]["details"]["field"] == "tier"
    ok = issue_api(reseller, product="int", tier="scale", quantity=1)
    assert ok.status_code == 201 and ok.json()["keys"][0]["code"].startswith("INT-")
    assert ok.json()["batch"]["tier"] == "scale"
    assert issue_api(reseller, product="pos", tier="scale").status_code == 422
    assert KeyBatch.objects.count() == 1


def test_issue_ten_thousand_keys_in_one_request(reseller):
    response = issue_api(reseller, quantity=10_000)
    assert response.status_code == 201
    assert len({k["code"] for k in response.json()["keys"]}) == 10_000
    assert ActivationKey.objects.count() == 10_000
    assert issue_api(reseller, quantity=10_001).status_code == 422


def test_redeem_by_must_be_in_the_future(reseller):
    past = (clock.now() - timedelta(minutes=1)).isoformat()
    response = issue_api(reseller, redeem_by=past)
    assert response.status_code == 422 and response.json()["error"]["details"]["field"] == "redeem_by"
    future = (clock.now() + timedelta(days=30)).isoformat()
    assert issue_api(reseller, redeem_by=future).status_code == 201


def test_list_pages_by_keyset_newest_first(reseller):
    issue_api(reseller, quantity=7)
    seen, cursor = [], None
    while True:
        page = reseller.client.get(KEYS, {"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ActivationKey.objects.values_list("id", flat=True), reverse=True)
    bad = reseller.client.get(KEYS, {"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"


def test_list_item_fields(reseller, customer):
    code = issue_api(reseller, quantity=1, reference="Shop One").json()["keys"][0]["code"]
    post_json(customer.client, "/api/v1/keys/activate", {"key": code, "product": "pos"})
    [item] = reseller.client.get(KEYS).json()["items"]
    assert item["hint"] == f"POS-••••-••••-{code[-4:]}"
    assert item["status"] == "activated" and item["activated_account"] == "Shop One"
    assert item["activated_at"] is not None and item["revoked_at"] is None
    assert set(item) == {
        "id",
        "hint",
        "product",
        "tier",
        "seats",
        "months",
        "status",
        "reference",
        "batch",
        "created_at",
        "activated_at",
        "activated_account",
        "revoked_at",
    }


def test_list_filters_and_search(reseller, customer):
    pos = issue_api(reseller, quantity=3, reference="Spring promo").json()
    ints = issue_api(reseller, product="int", tier="growth", quantity=2, reference="Xero bundle").json()
    post_json(customer.client, "/api/v1/keys/activate", {"key": pos["keys"][0]["code"], "product": "pos"})
    soon = (clock.now() + timedelta(hours=1)).isoformat()
    expiring = issue_api(reseller, quantity=1, redeem_by=soon).json()

    def ids(**params):
        return {item["id"] for item in reseller.client.get(KEYS, params).json()["items"]}

    assert ids(product="int") == {k["id"] for k in ints["keys"]}
    assert ids(status="activated") == {pos["keys"][0]["id"]}
    assert ids(batch=ints["batch"]["id"]) == {k["id"] for k in ints["keys"]}
    assert ids(tier="growth") == {k["id"] for k in ints["keys"]}
    assert ids(q="spring") == {k["id"] for k in pos["keys"]}
    target = pos["keys"][1]
    assert target["id"] in ids(q=target["code"][-4:].lower())
    assert target["id"] in ids(q=f"POS-••••-••••-{target['code'][-4:]}")
    with time_machine.travel(clock.now() + timedelta(hours=2)):
        assert ids(status="expired") == {expiring["keys"][0]["id"]}
        assert expiring["keys"][0]["id"] not in ids(status="available")
    assert reseller.client.get(KEYS, {"status": "lost"}).status_code == 422


def test_lookup_by_full_key(reseller, customer):
    code = issue_api(reseller, quantity=1).json()["keys"][0]["code"]
    found = post_json(reseller.client, f"{KEYS}/lookup", {"key": code.lower().replace("-", " ")})
    assert found.status_code == 200 and found.json()["status"] == "available"
    from fiscobridge.keys.codes import generate_code

    missing = post_json(reseller.client, f"{KEYS}/lookup", {"key": generate_code("pos")})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    malformed = post_json(reseller.client, f"{KEYS}/lookup", {"key": "POS-1234"})
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "invalid_format"


def test_revoke_with_reason(reseller, customer):
    keys = issue_api(reseller, quantity=2).json()["keys"]
    response = post_json(reseller.client, f"{KEYS}/{keys[0]['id']}/revoke", {"reason": "Customer cancelled"})
    assert response.status_code == 200
    assert response.json()["status"] == "revoked" and response.json()["revoked_at"]
    again = post_json(reseller.client, f"{KEYS}/{keys[0]['id']}/revoke", {"reason": "again"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "key_already_revoked"
    post_json(customer.client, "/api/v1/keys/activate", {"key": keys[1]["code"], "product": "pos"})
    used = post_json(reseller.client, f"{KEYS}/{keys[1]['id']}/revoke", {"reason": "too late"})
    assert used.status_code == 409 and used.json()["error"]["code"] == "key_already_activated"
    assert ActivationKey.objects.get(pk=keys[1]["id"]).status == "activated"
    revoked = post_json(customer.client, "/api/v1/keys/activate", {"key": keys[0]["code"], "product": "pos"})
    assert revoked.json()["error"]["code"] == "not_available"
    event = Event.objects.get(action="key.revoked")
    assert event.details == {"reason": "Customer cancelled"} and event.actor == reseller.user


def test_a_full_key_in_the_search_is_refused_by_the_api_and_reduced_by_the_page(reseller):
    # Issue 10.2: a full key in a query string is refused by the API (it was silently reduced).
    code = issue_api(reseller, quantity=1).json()["keys"][0]["code"]
    assert reseller.client.get(KEYS, {"q": code}).json()["error"]["code"] == "key_in_query"
    page = reseller.client.get(KEYS, {"q": code[-4:]}).json()
    assert [item["hint"] for item in page["items"]] == [f"POS-••••-••••-{code[-4:]}"]
    from django.test import Client

    browser = Client()
    browser.force_login(reseller.user)
    html = browser.get("/partner/keys/", {"q": code}, follow=True).content.decode()
    assert code not in html and code[4:] not in html and f'value="{code[-4:]}"' in html
