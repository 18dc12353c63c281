"""Exact failure limits under parallel requests (SPEC 2.6, issue 9 item 3), on PostgreSQL.

40 not-available attempts at once: exactly the limit of the layer under test is answered 409
`not_available`, every other one 429 `too_many_attempts`, and a layer locks once. First with
threads in this process (each its own connection), then across two separate app servers
(gunicorn processes) on one database.
"""

import threading
from collections import Counter

import httpx
import pytest
from django.conf import settings as django_settings

from fiscobridge.audit.models import Event
from fiscobridge.keys.codes import generate_code
from fiscobridge.keys.models import FailureCounter, RedeemAttempt
from tests.app_server import AppServer
from tests.factories import outcome, post_json, run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

VALIDATE = "/api/v1/keys/validate"


def attempt(client):
    return lambda: post_json(client, VALIDATE, {"key": generate_code("pos"), "product": "pos"})


def raise_other_limits(settings, keep: str) -> int:
    """Every layer but `keep` gets a limit the test cannot reach; returns `keep`'s limit."""
    limits = {"session": "REDEEM_SESSION_FAILURE_LIMIT", "account": "REDEEM_ACCOUNT_FAILURE_LIMIT"}
    limits["ip"] = "REDEEM_IP_FAILURE_LIMIT"
    for layer, name in limits.items():
        if layer != keep:
            setattr(settings, name, 1000)
    return getattr(settings, limits[keep])


@pytest.mark.parametrize("layer", ["session", "account", "ip"])
def test_forty_parallel_failures_give_exactly_the_limit_of_each_layer(customer, settings, layer):
    limit = raise_other_limits(settings, layer)
    attempts = 40 if layer != "ip" else 60  # the IP limit is 50
    results = run_at_once([attempt(customer.client) for _ in range(attempts)])
    outcomes = Counter(outcome(r) for r in results)
    assert outcomes == {(409, "not_available"): limit, (429, "too_many_attempts"): attempts - limit}, outcomes
    # Only the answered failures are stored; the refused ones are counted on the locked counter.
    assert RedeemAttempt.objects.filter(failed=True).count() == limit
    counter = FailureCounter.objects.get(scope=layer)
    # A session counts afresh once its lock ends; the account and IP windows keep sliding.
    assert counter.failures == (0 if layer == "session" else limit) and counter.locked_until is not None
    assert counter.refused == attempts - limit
    assert Event.objects.filter(action="redeem.locked_out").count() == 1


def test_two_app_servers_on_one_database_keep_the_session_limit_exact(customer):
    limit = {"REDEEM_SESSION_FAILURE_LIMIT": str(django_settings.REDEEM_SESSION_FAILURE_LIMIT)}
    with AppServer(workers=3, env=limit) as first, AppServer(workers=3, env=limit) as second:
        urls = [first.url, second.url]
        barrier = threading.Barrier(40)
        answers: list = [None] * 40

        def send(index: int) -> None:
            body = {"key": generate_code("pos"), "product": "pos"}
            with httpx.Client(base_url=urls[index % 2], timeout=30) as client:
                barrier.wait(timeout=30)
                response = client.post(VALIDATE, json=body, headers={"Authorization": f"Bearer {customer.token}"})
                answers[index] = (response.status_code, response.json()["error"]["code"])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    outcomes = Counter(answers)
    assert outcomes == {(409, "not_available"): 5, (429, "too_many_attempts"): 35}, outcomes
    assert RedeemAttempt.objects.filter(failed=True).count() == 5
