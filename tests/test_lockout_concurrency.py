"""Exact failure limits under parallel requests (SPEC 2.6, issue 9 item 3), on PostgreSQL.

40 not-available attempts at once: exactly the limit of the layer under test is answered 409
`not_available`, every other one 429 `too_many_attempts`, and a layer locks once. First with
threads in this process (each its own connection), then across two separate app servers
(gunicorn processes) on one database.
"""

import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from django.conf import settings as django_settings
from django.db import connection

from fiscobridge.audit.models import Event
from fiscobridge.keys.codes import generate_code
from fiscobridge.keys.models import FailureCounter, RedeemAttempt
from tests.factories import outcome, post_json, run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

VALIDATE = "/api/v1/keys/validate"
ROOT = Path(__file__).resolve().parent.parent


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(port: int, database_url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATABASE_CONN_MAX_AGE": "0",
        "REDEEM_SESSION_FAILURE_LIMIT": str(django_settings.REDEEM_SESSION_FAILURE_LIMIT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "fiscobridge.wsgi:application", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", "3", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_ready(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server on {port} exited: {server.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"server on {port} did not answer within 60 s")


def test_two_app_servers_on_one_database_keep_the_session_limit_exact(customer):
    params = connection.settings_dict
    database_url = f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
    ports = [_free_port(), _free_port()]
    servers = [_start_server(port, database_url) for port in ports]
    try:
        for port, server in zip(ports, servers, strict=True):
            _wait_ready(port, server)
        barrier = threading.Barrier(40)
        answers: list = [None] * 40

        def send(index: int) -> None:
            port = ports[index % 2]
            body = {"key": generate_code("pos"), "product": "pos"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                barrier.wait(timeout=30)
                response = client.post(VALIDATE, json=body, headers={"Authorization": f"Bearer {customer.token}"})
                answers[index] = (response.status_code, response.json()["error"]["code"])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
    outcomes = Counter(answers)
    assert outcomes == {(409, "not_available"): 5, (429, "too_many_attempts"): 35}, outcomes
    assert RedeemAttempt.objects.filter(failed=True).count() == 5
