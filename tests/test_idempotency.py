"""Idempotency keys (SPEC 8, issue 10.5): replay, mismatch, concurrency, expiry, and "a replayed
issue never shows codes"."""

from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from fiscobridge.api.models import IdempotentRequest
from fiscobridge.api.tasks import prune_idempotent_requests
from fiscobridge.core import clock
from fiscobridge.integrations.models import Connection
from fiscobridge.keys.models import KeyBatch
from fiscobridge.pos.models import Certificate
from fiscobridge.subscriptions.models import Subscription
from tests.factories import (
    CERTIFICATES,
    PFX_PASSWORD,
    assert_error,
    bearer_client,
    browser_for,
    grant,
    new_pfx,
    post_json,
    run_at_once,
    token_client,
)

ACTIVATE = "/api/v1/keys/activate"
CONNECTIONS = "/api/v1/integrations/connections"
PARTNER_KEYS = "/api/v1/partner/keys"


def send(client: Client, path: str, body: dict, key: str):
    return post_json(client, path, body, HTTP_IDEMPOTENCY_KEY=key)


def test_a_retried_activation_gets_the_first_answer_and_activates_once(customer, code):
    first = send(customer.client, ACTIVATE, {"key": code, "product": "pos"}, "activate-1")
    again = send(customer.client, ACTIVATE, {"product": "pos", "key": code}, "activate-1")  # key order differs
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert Subscription.objects.count() == 1
    # Without the header the same retry is a second activation attempt, refused as it always was.
    assert post_json(customer.client, ACTIVATE, {"key": code, "product": "pos"}).json()["error"]["code"] == (
        "already_activated"
    )


def test_a_retried_usage_report_counts_its_invoices_once(customer):
    uid = post_json(customer.client, CONNECTIONS, {"type": "custom", "tier": "trial", "name": "Sync"}).json()["uid"]
    for _ in range(3):
        response = send(customer.client, f"{CONNECTIONS}/{uid}/usage", {"invoices": 7}, "usage-batch-42")
        assert response.status_code == 200 and response.json()["invoices_this_month"] == 7
    assert (
        send(customer.client, f"{CONNECTIONS}/{uid}/usage", {"invoices": 7}, "usage-batch-43").json()[
            "invoices_this_month"
        ]
        == 14
    )


def test_a_connection_created_twice_with_one_key_is_one_connection(customer):
    body = {"type": "custom", "tier": "trial", "name": "Sync"}
    answers = [send(customer.client, CONNECTIONS, body, "create-conn") for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201] and answers[0].json() == answers[1].json()
    assert Connection.objects.count() == 1


def test_a_certificate_uploaded_twice_with_one_key_is_one_certificate(customer, issue):
    grant(customer, issue, seats=2)
    data = new_pfx()
    answers = [
        customer.client.post(
            CERTIFICATES, {"file": _file(data), "password": PFX_PASSWORD}, HTTP_IDEMPOTENCY_KEY="upload-1"
        )
        for _ in range(2)  # each with its own multipart boundary
    ]
    assert [a.status_code for a in answers] == [201, 201], answers[1].content
    assert answers[1]["Idempotent-Replayed"] == "true"
    assert Certificate.objects.count() == 1
    other = customer.client.post(
        CERTIFICATES, {"file": _file(new_pfx()), "password": PFX_PASSWORD}, HTTP_IDEMPOTENCY_KEY="upload-1"
    )
    assert_error(other, 422, "idempotency_key_reused")


def _file(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("pos.pfx", data, "application/x-pkcs12")


def test_a_replayed_issue_never_shows_codes(reseller):
    body = {"product": "pos", "seats": 1, "months": 12, "quantity": 3}
    first = send(reseller.client, PARTNER_KEYS, body, "order-1042")
    assert first.status_code == 201 and len(first.json()["keys"]) == 3
    again = send(reseller.client, PARTNER_KEYS, body, "order-1042")
    error = assert_error(again, 409, "batch_already_issued")
    assert error["details"] == {"batch": first.json()["batch"]["id"]}
    assert again["Idempotent-Replayed"] == "true"
    for key in first.json()["keys"]:
        assert key["code"] not in again.content.decode()
        assert key["code"] not in IdempotentRequest.objects.get().body
    assert KeyBatch.objects.count() == 1


def test_a_replayed_revoke_answers_as_the_first(reseller):
    issued = send(reseller.client, PARTNER_KEYS, {"product": "pos", "seats": 1, "months": 1, "quantity": 1}, "i-1")
    key_id = issued.json()["keys"][0]["id"]
    first = send(reseller.client, f"{PARTNER_KEYS}/{key_id}/revoke", {"reason": "refund"}, "revoke-1")
    again = send(reseller.client, f"{PARTNER_KEYS}/{key_id}/revoke", {"reason": "refund"}, "revoke-1")
    assert first.status_code == again.status_code == 200 and first.json() == again.json()


def test_the_same_key_with_another_body_or_route_is_refused(customer, code, issue):
    assert send(customer.client, ACTIVATE, {"key": code, "product": "pos"}, "k").status_code == 201
    [other_code] = issue()
    error = assert_error(send(customer.client, ACTIVATE, {"key": other_code, "product": "pos"}, "k"), 422)
    assert error["code"] == "idempotency_key_reused"
    body = {"type": "custom", "tier": "trial", "name": "Sync"}
    assert_error(send(customer.client, CONNECTIONS, body, "k"), 422, "idempotency_key_reused")
    assert Subscription.objects.count() == 1 and Connection.objects.count() == 0


def test_keys_are_scoped_to_the_token(customer, issue):
    [first_code, second_code] = issue(quantity=2)
    other_token = bearer_client(customer.user)  # another token of the same user
    assert send(customer.client, ACTIVATE, {"key": first_code, "product": "pos"}, "same").status_code == 201
    assert send(other_token, ACTIVATE, {"key": second_code, "product": "pos"}, "same").status_code == 201
    assert Subscription.objects.count() == 2


def test_a_browser_session_has_its_own_scope(customer, code):
    browser = browser_for(customer)
    first = send(browser, ACTIVATE, {"key": code, "product": "pos"}, "browser-1")
    again = send(browser, ACTIVATE, {"key": code, "product": "pos"}, "browser-1")
    assert first.status_code == again.status_code == 201 and again["Idempotent-Replayed"] == "true"


def test_a_retry_while_the_first_runs_is_told_the_key_is_in_use(customer, code):
    send(customer.client, ACTIVATE, {"key": code, "product": "pos"}, "busy")
    IdempotentRequest.objects.update(status=None, body="")  # as while the first still runs
    assert_error(
        send(customer.client, ACTIVATE, {"key": code, "product": "pos"}, "busy"), 409, "idempotency_key_in_use"
    )
    # A first request that never answered (its worker died) frees its key once stale.
    with time_machine.travel(clock.now() + timedelta(minutes=3)):
        retry = send(customer.client, ACTIVATE, {"key": code, "product": "pos"}, "busy")
    assert_error(retry, 409, "already_activated")  # run again: the domain's own answer, no second effect
    assert Subscription.objects.count() == 1


def test_answers_are_kept_for_24_hours(customer, issue):
    [code] = issue()
    assert send(customer.client, ACTIVATE, {"key": "POS-2222-3333-4444", "product": "pos"}, "late").status_code == 400
    with time_machine.travel(clock.now() + timedelta(hours=23)):
        replay = send(customer.client, ACTIVATE, {"key": "POS-2222-3333-4444", "product": "pos"}, "late")
        assert replay["Idempotent-Replayed"] == "true"
    with time_machine.travel(clock.now() + timedelta(hours=25)):
        fresh = send(customer.client, ACTIVATE, {"key": "POS-2222-3333-4444", "product": "pos"}, "late")
        assert not fresh.has_header("Idempotent-Replayed")
        assert prune_idempotent_requests.call() == 0  # the row of the fresh request is new
    with time_machine.travel(clock.now() + timedelta(hours=50)):
        assert prune_idempotent_requests.call() == 1
    assert code


def test_unauthorized_and_throttled_answers_are_not_kept(customer, settings):
    settings.REDEEM_SESSION_FAILURE_LIMIT = 1
    assert send(customer.client, ACTIVATE, {"key": "POS-2345-6789-ABCJ", "product": "pos"}, "a").status_code in (
        400,
        409,
    )
    locked = send(customer.client, ACTIVATE, {"key": "POS-2345-6789-ABCJ", "product": "pos"}, "b")
    assert locked.status_code == 429
    assert not IdempotentRequest.objects.filter(status=429).exists()
    anonymous = send(Client(), ACTIVATE, {"key": "POS-2345-6789-ABCJ", "product": "pos"}, "c")
    assert anonymous.status_code == 401
    assert IdempotentRequest.objects.count() == 1


@pytest.mark.parametrize("key", ["", " leading", "x" * 256, "naïve", "tab\there"])
def test_a_malformed_key_is_a_400(customer, code, key):
    response = send(customer.client, ACTIVATE, {"key": code, "product": "pos"}, key)
    assert_error(response, 400, "invalid_idempotency_key")
    assert Subscription.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_retries_activate_once(customer, issue):
    [code] = issue()

    def attempt():
        return send(token_client(customer.token), ACTIVATE, {"key": code, "product": "pos"}, "parallel")

    answers = run_at_once([attempt] * 8)
    outcomes = Counter(
        "replayed"
        if a.has_header("Idempotent-Replayed")
        else f"{a.status_code} {a.json().get('error', {}).get('code', 'ok')}"
        for a in answers
    )
    assert outcomes["201 ok"] == 1, outcomes
    assert set(outcomes) <= {"201 ok", "409 idempotency_key_in_use", "replayed"}, outcomes
    assert Subscription.objects.count() == 1
