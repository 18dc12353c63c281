"""Webhooks for partners (SPEC 9.2, docs/webhooks.md), against a real local HTTP receiver."""

import json
import socket
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from standardwebhooks import Webhook

from fiscobridge.core import clock
from fiscobridge.core.errors import InvalidInput
from fiscobridge.keys.services import void_key
from fiscobridge.notifications.models import EmailKind, OutboundEmail
from fiscobridge.notifications.reminders import queue_due_reminders
from fiscobridge.webhooks import gateway
from fiscobridge.webhooks.events import emit_due_subscription_endings
from fiscobridge.webhooks.models import Delivery, DeliveryStatus, Endpoint, EndpointStatus, Event
from fiscobridge.webhooks.services import RETRY_SCHEDULE, deliver_due
from tests.factories import (
    activate,
    browser_for,
    code_variants,
    dump_database,
    hint_of,
    key_of,
    post_json,
    run_at_once,
    run_tasks,
)
from tests.webhook_receiver import start_receiver, stop_receiver

ENDPOINTS = "/api/v1/partner/webhooks"
ALL_EVENTS = ["key.activated", "key.revoked", "key.voided", "subscription.ending", "batch.issued"]


@pytest.fixture
def allow_local(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture
def receiver():
    started = start_receiver()
    yield started
    stop_receiver(started)


def add_endpoint(persona, url, events=ALL_EVENTS, **extra) -> dict:
    response = post_json(persona.client, ENDPOINTS, {"url": url, "events": events, **extra})
    assert response.status_code == 201, response.content
    return response.json()


def verified(secret: str, request) -> dict:
    """The body as the receiver's Standard Webhooks library reads it (raises if the signature fails),
    at the moment it was sent (the library refuses a timestamp more than 5 minutes away; some tests
    travel in time)."""
    with time_machine.travel(int(request.headers["webhook-timestamp"]), tick=False):
        return Webhook(secret).verify(request.body, request.headers)


# --- signing and payloads ---------------------------------------------------------------------


def test_an_activation_is_delivered_signed_and_verifies_with_the_standard_webhooks_library(
    allow_local, receiver, reseller, customer, issue
):
    endpoint = add_endpoint(reseller, receiver.url, ["key.activated"])
    secret = endpoint["secret"]
    assert secret.startswith("whsec_")
    [code] = issue(seats=3, months=6)
    assert activate(customer, code).status_code == 201
    assert receiver.requests == []  # not in the request: after the commit, by the worker
    run_tasks()

    [request] = receiver.requests
    body = verified(secret, request)
    event = Event.objects.get()
    assert request.headers["webhook-id"] == event.pk == body["id"]
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["content-type"] == "application/json"
    assert body["type"] == "key.activated" and body["created_at"].endswith("Z")
    data = body["data"]
    key = key_of(code)
    assert data["key"] == {"id": key.pk, "hint": hint_of(code), "batch_id": key.batch_id}
    assert data["package"] == {"product": "pos", "tier": None, "seats": 3, "months": 6}
    assert data["account"] == {"name": "Shop One"}
    assert data["activated_at"].startswith(key.activated_at.date().isoformat())
    subscription = key.subscription
    assert data["subscription"]["id"] == subscription.pk
    assert data["subscription"]["expires_at"].startswith(subscription.expires_at.date().isoformat())
    for variant in code_variants(code):
        assert variant not in request.body
    # A wrong secret or a changed body does not verify (the check can fail).
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 44).verify(request.body, request.headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(request.body.replace("Shop One", "Shop Two"), request.headers)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == (DeliveryStatus.SUCCEEDED, 1, 200)
    assert len(delivery.response_body.encode()) <= 1024


def test_an_activation_without_endpoints_writes_no_event_and_no_task(customer, issue):
    from django_tasks_db.models import DBTaskResult

    [code] = issue()
    assert activate(customer, code).status_code == 201
    assert not Event.objects.exists() and not Delivery.objects.exists()
    assert not DBTaskResult.objects.filter(task_path__contains="webhooks").exists()


def test_each_event_reaches_only_the_endpoints_that_chose_it(allow_local, receiver, reseller, customer, issue, staff):
    everything = add_endpoint(reseller, receiver.url + "/all")
    add_endpoint(reseller, receiver.url + "/batches", ["batch.issued"])
    disabled = add_endpoint(reseller, receiver.url + "/off")
    off = reseller.client.patch(f"{ENDPOINTS}/{disabled['id']}", {"enabled": False}, content_type="application/json")
    assert off.status_code == 200
    first, second = issue(quantity=2, months=1, reference="Shop order 7")
    assert activate(customer, first).status_code == 201
    key = key_of(first)
    void_key(key=key, reason="chargeback", actor=staff.user)
    revoked = post_json(reseller.client, f"/api/v1/partner/keys/{key_of(second).pk}/revoke", {"reason": "lost"})
    assert revoked.status_code == 200
    [third] = issue(months=1)
    assert activate(customer, third).status_code == 201
    with time_machine.travel(clock.now() + timedelta(days=25), tick=False):
        assert queue_due_reminders() > 0  # the e-mail reminders are due…
        assert emit_due_subscription_endings() == 1  # …and so is the event, by the same rule
        assert emit_due_subscription_endings() == 0  # a second run tells nothing twice
        run_tasks()

    by_path = {}
    for request in receiver.requests:
        by_path.setdefault(request.path, []).append(
            verified(everything["secret"], request) if "/all" in request.path else json.loads(request.body)
        )
    assert "/hooks/off" not in by_path
    assert [b["type"] for b in by_path["/hooks/batches"]] == ["batch.issued", "batch.issued"]
    types = [b["type"] for b in by_path["/hooks/all"]]
    assert sorted(types) == sorted(
        ["batch.issued", "key.activated", "key.voided", "key.revoked", "batch.issued", "key.activated",
         "subscription.ending"]
    ), types  # fmt: skip
    bodies = {b["type"]: b["data"] for b in by_path["/hooks/all"]}
    assert bodies["batch.issued"]["batch"]["quantity"] == 1
    assert bodies["key.voided"]["account"] == {"name": "Shop One"}
    assert bodies["key.voided"]["subscription"]["ended_at"] is not None
    assert bodies["key.revoked"]["key"]["hint"] == hint_of(second)
    ending = bodies["subscription.ending"]
    assert ending["days_left"] == 7 and ending["key"]["hint"] == hint_of(third)
    assert ending["account"] == {"name": "Shop One"}
    # The voided key's subscription has ended: no reminder, no event for it.
    assert all(
        b["data"]["key"]["hint"] != hint_of(first) for b in by_path["/hooks/all"] if b["type"] == "subscription.ending"
    )


# --- retries, failing, resend -----------------------------------------------------------------


def test_a_failed_delivery_is_retried_on_schedule_until_it_succeeds(allow_local, reseller, customer, issue):
    receiver = start_receiver(statuses=[500, 503, 200])
    try:
        add_endpoint(reseller, receiver.url, ["key.activated"])
        [code] = issue()
        assert activate(customer, code).status_code == 201
        start = clock.now()
        run_tasks()
        delivery = Delivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 1, 500)
        assert delivery.next_attempt_at - start >= timedelta(seconds=RETRY_SCHEDULE[0])
        assert delivery.next_attempt_at - start < timedelta(seconds=RETRY_SCHEDULE[0] + 30)
        run_tasks()  # not due yet: nothing is sent
        assert len(receiver.requests) == 1
        with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1), tick=False):
            run_tasks()  # the retry's own task (run_after)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 2, 503)
        assert timedelta(seconds=299) < delivery.next_attempt_at - delivery.last_attempt_at <= timedelta(seconds=300)
        with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1), tick=False):
            run_tasks()
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.response_code) == ("succeeded", 3, 200)
        assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1  # stable across retries
        assert len({r.body for r in receiver.requests}) == 1
    finally:
        stop_receiver(receiver)


def test_after_the_last_retry_the_endpoint_is_failing_and_the_partner_is_emailed(
    allow_local, reseller, customer, issue, mailoutbox
):
    receiver = start_receiver(statuses=[500])
    try:
        endpoint = add_endpoint(reseller, receiver.url, ["key.activated"])
        [code] = issue()
        assert activate(customer, code).status_code == 201
        run_tasks()
        for _ in RETRY_SCHEDULE:
            delivery = Delivery.objects.get()
            assert delivery.status == "pending"
            with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1), tick=False):
                deliver_due()
        delivery = Delivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 8, None)
        assert len(receiver.requests) == 8
        assert Endpoint.objects.get().status == EndpointStatus.FAILING
        email = OutboundEmail.objects.get(kind=EmailKind.WEBHOOK_FAILING)
        assert email.recipients == [reseller.user.email] or reseller.user.email in str(email.recipients)
        run_tasks()
        [sent] = [m for m in mailoutbox if "Webhook endpoint failing" in m.subject]
        assert receiver.url in sent.body and reseller.user.email in sent.to

        # Resend from the portal (htmx): one more attempt now; a success clears the failing mark.
        receiver.statuses = [200]
        page = browser_for(reseller)
        answer = page.post(f"/partner/webhooks/deliveries/{delivery.pk}/resend/", HTTP_HX_REQUEST="true")
        assert answer.status_code == 200 and b"Queued to be sent again" in answer.content
        run_tasks()
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("succeeded", 9)
        assert Endpoint.objects.get(pk=endpoint["id"]).status == EndpointStatus.OK
        assert receiver.requests[-1].headers["webhook-id"] == delivery.event_id
    finally:
        stop_receiver(receiver)


def test_a_redirect_is_not_followed(allow_local, reseller, customer, issue):
    elsewhere = start_receiver()
    receiver = start_receiver(statuses=[302], location=elsewhere.url)
    try:
        add_endpoint(reseller, receiver.url, ["key.activated"])
        [code] = issue()
        assert activate(customer, code).status_code == 201
        run_tasks()
        delivery = Delivery.objects.get()
        assert (delivery.status, delivery.response_code) == ("pending", 302)
        assert "redirects are not followed" in delivery.last_error
        assert len(receiver.requests) == 1 and elsewhere.requests == []
    finally:
        stop_receiver(receiver)
        stop_receiver(elsewhere)


def test_a_slow_receiver_never_delays_an_activation(allow_local, reseller, customer, issue):
    receiver = start_receiver(delay=5)
    try:
        add_endpoint(reseller, receiver.url, ["key.activated"])
        [code] = issue()
        started = time.monotonic()
        assert activate(customer, code).status_code == 201
        took = time.monotonic() - started
        assert took < 5, took  # the receiver would take 5 s to answer…
        assert receiver.requests == []  # …and was not even called during the request
        started = time.monotonic()
        run_tasks()  # the worker waits for it instead
        assert time.monotonic() - started >= 5
        assert Delivery.objects.get().status == "succeeded"
    finally:
        stop_receiver(receiver)


# --- exactly once with two workers ------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_deliver_each_event_to_each_endpoint_exactly_once(settings, reseller, customer, issue):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    receiver = start_receiver(delay=0.2)
    try:
        add_endpoint(reseller, receiver.url + "/a", ["batch.issued"])
        add_endpoint(reseller, receiver.url + "/b", ["batch.issued"])
        for _ in range(6):
            issue()
        assert Delivery.objects.count() == 12
        # Four workers sweep at once (threads, each with its own connection), twice over.
        run_at_once([deliver_due for _ in range(4)])
        run_at_once([deliver_due for _ in range(4)])
        pairs = [(r.path, r.headers["webhook-id"]) for r in receiver.requests]
        assert len(pairs) == 12 and len(set(pairs)) == 12, pairs
        assert set(Delivery.objects.values_list("status", "attempts")) == {("succeeded", 1)}
    finally:
        stop_receiver(receiver)


# --- targets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://100.64.0.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
def test_private_loopback_and_link_local_targets_are_refused(reseller, url):
    response = post_json(reseller.client, ENDPOINTS, {"url": url, "events": ["key.activated"]})
    assert response.status_code == 422, response.content
    assert response.json()["error"]["details"]["field"] == "url"
    assert not Endpoint.objects.exists()


def test_a_name_that_resolves_to_loopback_is_refused_at_delivery(
    settings, allow_local, receiver, reseller, customer, issue
):
    add_endpoint(reseller, receiver.url, ["key.activated"])
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False  # e.g. the setting was turned off since
    with pytest.raises(gateway.TargetRefused):
        gateway._resolve("localhost", 80)
    [code] = issue()
    assert activate(customer, code).status_code == 201
    run_tasks()
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.last_error.startswith("refused:")
    assert receiver.requests == []


def test_https_is_required_outside_development(settings, allow_local, reseller):
    settings.ENVIRONMENT = "production"
    response = post_json(reseller.client, ENDPOINTS, {"url": "http://hooks.example.com/x", "events": ["key.revoked"]})
    assert response.status_code == 422 and "HTTPS" in response.json()["error"]["message"]
    with pytest.raises(InvalidInput):
        gateway.check_url("https://user:pass@hooks.example.com/x")
    assert gateway.check_url("https://hooks.example.com/x") == "https://hooks.example.com/x"


def test_the_connection_goes_to_the_checked_address(settings, allow_local, receiver, monkeypatch):
    """The name is resolved once and checked; the socket connects to that very address (a second
    lookup could answer differently: DNS rebinding)."""
    host, port = receiver.server.server_address[:2]
    looked_up = []
    real = socket.getaddrinfo

    def counting(name, *args, **kwargs):
        looked_up.append(name)
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    answer = gateway.post(f"http://rebind.example:{port}/hooks", body="{}", headers={})
    # one lookup of the name; the socket is then opened to the literal address (no DNS for it)
    assert answer.status == 200 and [name for name in looked_up if name != "127.0.0.1"] == ["rebind.example"]
    assert receiver.requests[0].headers["host"] == f"rebind.example:{port}"


# --- the API and tenancy ----------------------------------------------------------------------


def test_the_secret_is_shown_once_and_stored_encrypted(allow_local, reseller):
    created = add_endpoint(reseller, "https://hooks.example.com/fb", ["key.revoked"], description="Back office")
    shown = reseller.client.get(f"{ENDPOINTS}/{created['id']}").json()
    listed = reseller.client.get(ENDPOINTS).json()["items"]
    assert "secret" not in shown and all("secret" not in e for e in listed)
    assert shown["events"] == ["key.revoked"] and shown["description"] == "Back office" and shown["status"] == "ok"
    assert created["secret"] not in dump_database()
    assert created["secret"][6:] not in dump_database()


def test_endpoints_can_be_changed_and_deleted(reseller):
    created = add_endpoint(reseller, "https://hooks.example.com/fb", ["key.revoked"])
    path = f"{ENDPOINTS}/{created['id']}"
    changed = reseller.client.patch(
        path, {"events": ["key.activated", "batch.issued"], "enabled": False}, content_type="application/json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["events"] == ["batch.issued", "key.activated"] and changed.json()["enabled"] is False
    refused = reseller.client.patch(path, {"events": ["key.stolen"]}, content_type="application/json")
    assert refused.status_code == 422
    assert reseller.client.delete(path).status_code == 204
    assert reseller.client.get(path).status_code == 404


def test_other_partners_customers_and_anonymous_cannot_reach_endpoints(
    allow_local, receiver, reseller, other_reseller, customer, anonymous, issue
):
    created = add_endpoint(reseller, receiver.url, ["batch.issued"])
    issue()
    run_tasks()
    delivery = Delivery.objects.get()
    path = f"{ENDPOINTS}/{created['id']}"
    for url in (path, path + "/deliveries"):
        assert other_reseller.client.get(url).status_code == 404
        assert customer.client.get(url).status_code == 403
        assert anonymous.get(url).status_code == 401
    assert other_reseller.client.get(ENDPOINTS).json() == {"items": []}
    resend = f"{ENDPOINTS}/deliveries/{delivery.pk}/resend"
    assert post_json(other_reseller.client, resend, {}).status_code == 404
    assert post_json(customer.client, resend, {}).status_code == 403
    assert other_reseller.client.delete(path).status_code == 404
    assert Endpoint.objects.filter(pk=created["id"]).exists()
    deliveries = reseller.client.get(path + "/deliveries").json()["items"]
    assert [d["event_type"] for d in deliveries] == ["batch.issued"]
    assert deliveries[0]["payload"]["type"] == "batch.issued" and deliveries[0]["status"] == "succeeded"
    again = post_json(reseller.client, resend, {})
    assert again.status_code == 202 and again.json()["status"] == "pending"


def test_a_customer_token_cannot_add_an_endpoint(customer):
    response = post_json(customer.client, ENDPOINTS, {"url": "https://hooks.example.com", "events": ["key.revoked"]})
    assert response.status_code == 403


# --- the Partner Portal page ------------------------------------------------------------------


def test_the_webhooks_page_adds_an_endpoint_and_shows_its_secret_once(reseller, other_reseller):
    page = browser_for(reseller)
    assert b"Webhooks" in page.get("/partner/").content  # in the partner nav
    added = page.post(
        "/partner/webhooks/",
        {"url": "https://hooks.example.com/fb", "events": ["key.activated", "key.revoked"], "description": "CRM"},
    )
    assert added.status_code == 200
    endpoint = Endpoint.objects.get()
    from fiscobridge.webhooks.signing import unseal

    secret = unseal(endpoint.secret_encrypted)
    assert secret.encode() in added.content and "no-store" in added["Cache-Control"]
    listed = page.get("/partner/webhooks/")
    assert b"https://hooks.example.com/fb" in listed.content and secret.encode() not in listed.content
    refused = page.post("/partner/webhooks/", {"url": "http://10.0.0.1/", "events": ["key.activated"]})
    assert refused.status_code == 422 and b"Private, loopback" in refused.content
    assert browser_for(other_reseller).get(f"/partner/webhooks/{endpoint.pk}/").status_code == 404
    assert page.post(f"/partner/webhooks/{endpoint.pk}/toggle/").status_code == 302
    assert Endpoint.objects.get().enabled is False
    assert page.post(f"/partner/webhooks/{endpoint.pk}/delete/").status_code == 302
    assert not Endpoint.objects.exists()


def test_queries_of_an_activation_with_a_listening_endpoint_stay_one_round_trip(allow_local, reseller, customer, issue):
    """The webhook's writes go with the activation's final writes (PostgreSQL: one round trip)."""
    from django.test.utils import CaptureQueriesContext

    add_endpoint(reseller, "https://hooks.example.com/fb", ["key.activated"])
    [code] = issue()
    parameters = []

    def count_parameters(execute, sql, params, many, context):
        parameters.append(len(params or ()))
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(count_parameters):
        assert activate(customer, code).status_code == 201
    assert Event.objects.count() == 1 and Delivery.objects.count() == 1
    writes = [q["sql"] for q in captured.captured_queries if "INSERT INTO webhooks_" in q["sql"].replace('"', "")]
    if connection.vendor == "postgresql":
        assert len(writes) == 1 and "keys_redeemattempt" in writes[0], writes
        # psycopg keeps its conversion of that statement (core/hot_sql.py raises its limit)
        from psycopg import _queries

        assert max(parameters) <= _queries.MAX_CACHED_STATEMENT_PARAMS, parameters


@pytest.mark.parametrize("listening", [{"events": ["key.revoked"]}, {"enabled": False}])
def test_an_endpoint_that_does_not_listen_to_activations_gets_nothing_from_one(
    allow_local, reseller, customer, issue, listening
):
    from django_tasks_db.models import DBTaskResult

    endpoint = add_endpoint(reseller, "https://hooks.example.com/fb", listening.get("events", ["key.activated"]))
    if "enabled" in listening:
        Endpoint.objects.filter(pk=endpoint["id"]).update(enabled=False)
    [code] = issue()
    assert activate(customer, code).status_code == 201
    assert not Event.objects.exists() and not Delivery.objects.exists()
    assert not DBTaskResult.objects.filter(task_path__contains="webhooks").exists()


def test_prune_deletes_old_events_with_their_deliveries_but_never_a_pending_one(reseller, issue):
    from fiscobridge.prune import prune

    add_endpoint(reseller, "https://hooks.example.com/fb", ["batch.issued"])
    issue()
    issue()
    old, pending = Delivery.objects.order_by("pk")
    Delivery.objects.filter(pk=old.pk).update(status=DeliveryStatus.SUCCEEDED)
    issue()  # a recent one
    with time_machine.travel(clock.now() + timedelta(days=31), tick=False):
        report = prune()
    assert report["webhook_events"] == 2  # the event and its delivery
    assert not Event.objects.filter(pk=old.event_id).exists() and not Delivery.objects.filter(pk=old.pk).exists()
    assert Delivery.objects.filter(pk=pending.pk).exists() and Delivery.objects.count() == 2


def test_an_answer_that_is_not_http_is_a_failed_attempt_not_a_crash(allow_local, reseller, customer, issue):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer_garbage():
        connection_, _ = server.accept()
        connection_.recv(65536)
        connection_.sendall(b"this is not HTTP\r\n\r\n")
        connection_.close()

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    try:
        add_endpoint(reseller, f"http://127.0.0.1:{server.getsockname()[1]}/x", ["key.activated"])
        [code] = issue()
        assert activate(customer, code).status_code == 201
        run_tasks()
        delivery = Delivery.objects.get()
        assert delivery.status == "pending" and delivery.attempts == 1 and delivery.claimed_until is None
        assert "BadStatusLine" in delivery.last_error or "RemoteDisconnected" in delivery.last_error
    finally:
        thread.join(timeout=5)
        server.close()


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/a b", "https://hooks.exämple.com/", "https://h.example.com/\x00"]
)
def test_a_url_that_an_http_request_cannot_carry_is_refused(reseller, url):
    response = post_json(reseller.client, ENDPOINTS, {"url": url, "events": ["key.activated"]})
    assert response.status_code == 422 and response.json()["error"]["details"]["field"] == "url"


def test_another_partner_cannot_change_an_endpoint(reseller, other_reseller):
    created = add_endpoint(reseller, "https://hooks.example.com/fb", ["key.revoked"])
    path = f"{ENDPOINTS}/{created['id']}"
    response = other_reseller.client.patch(path, {"enabled": False}, content_type="application/json")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert Endpoint.objects.get().enabled is True
