"""One outcome, one answer (issue 10.3): the database connection is broken at each step of an
activation — before each statement, and at the commit — and the answer must always say what the
database holds: 201 exactly when the key is activated with its subscription, attempt row and
events; otherwise 503 `service_unavailable` and nothing of the activation stored. Then the
next request works again (Django reconnects).

The connection is broken for real: another connection terminates the request's PostgreSQL
backend (pg_terminate_backend), as a restart or a network cut would."""

from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection

from fiscobridge.audit.models import Event
from fiscobridge.keys.models import RedeemAttempt
from fiscobridge.subscriptions.models import Subscription
from tests.factories import activate, assert_error, key_of

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _terminate(pid: int) -> None:
    params = connection.settings_dict
    dsn = f"host={params['HOST']} port={params['PORT']} user={params['USER']} dbname={params['NAME']}"
    if params.get("PASSWORD"):
        dsn += f" password={params['PASSWORD']}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


@contextmanager
def broken_at(step: int):
    """Break the connection just before the `step`-th statement of the request (1-based), or
    at its commit when `step` is "commit". Yields a list that tells whether the break happened."""
    seen, broke = [0], []

    def wrapper(execute, sql, params, many, context):
        seen[0] += 1
        if seen[0] == step:
            _terminate(connection.connection.info.backend_pid)
            broke.append(sql[:60])
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield broke


@contextmanager
def broken_at_commit():
    original, broke = connection.commit, []

    def commit():
        if connection.in_atomic_block is False and connection.connection is not None:
            _terminate(connection.connection.info.backend_pid)
            broke.append("commit")
        return original()

    connection.commit = commit
    try:
        yield broke
    finally:
        connection.commit = original


def _held(code: str) -> dict:
    connection.close()  # the test's own connection may be the one that was cut
    key = key_of(code)
    return {
        "activated": key.status == "activated",
        "subscriptions": Subscription.objects.filter(activation_key=key).count(),
        "attempts": RedeemAttempt.objects.filter(action="activate", outcome="ok").count(),
        "events": Event.objects.filter(action="key.activated").count(),
    }


def _assert_answer_matches(response, held: dict, label: str) -> None:
    if response.status_code == 201:
        assert held == {"activated": True, "subscriptions": 1, "attempts": 1, "events": 1}, (label, held)
    else:
        assert_error(response, 503, "service_unavailable")
        assert response["Retry-After"]
        assert held == {"activated": False, "subscriptions": 0, "attempts": 0, "events": 0}, (label, held)


def _reset_counts() -> None:
    RedeemAttempt.objects.all().delete()
    Event.objects.filter(action="key.activated").delete()


def test_a_broken_connection_at_any_step_never_answers_against_the_database(customer, issue):
    outcomes = {}
    step = 0
    while True:  # one statement further each time, until the activation runs out of statements
        step += 1
        assert step < 20, "an activation of twenty statements is not lean"
        [code] = issue()
        _reset_counts()
        with broken_at(step) as broke:
            response = activate(customer, code)
        held = _held(code)
        if not broke:
            assert response.status_code == 201 and held["activated"], (step, response.content)
            break
        _assert_answer_matches(response, held, f"step {step} ({broke[0]})")
        outcomes[f"{step}: {broke[0]}"] = response.status_code
    [code] = issue()
    _reset_counts()
    with broken_at_commit() as broke:
        response = activate(customer, code)
    assert broke == ["commit"]
    _assert_answer_matches(response, _held(code), "commit")
    outcomes["commit"] = response.status_code
    # Every cut before or at the commit loses the activation, and says so.
    assert set(outcomes.values()) == {503}, outcomes
    assert len(outcomes) >= 3, outcomes  # token, claim, the final writes (and the commit)
    # And the next activation, on a fresh connection, goes through.
    [code] = issue()
    assert activate(customer, code).status_code == 201
