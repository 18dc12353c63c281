"""Race-free redemption under real concurrency: threads, each with its own database connection.

Runs in both passes of `make test`; the PostgreSQL pass is the one that proves row-level
behaviour (SQLite serialises writers with BEGIN IMMEDIATE).
"""

from collections import Counter

import pytest
from django.test import Client

from fiscobridge.accounts.services import create_account
from fiscobridge.keys.models import ActivationKey, KeyStatus
from fiscobridge.subscriptions.models import Subscription
from tests.factories import activate, bearer_client, outcome, run_at_once

pytestmark = pytest.mark.django_db(transaction=True)


def activate_call(client, code, **extra):
    return lambda: activate(client, code, **extra)


def test_parallel_activations_of_one_key_from_many_accounts_redeem_it_once(issue):
    [code] = issue(seats=3)
    clients = [
        bearer_client(create_account(name=f"Shop {i}", email=f"owner{i}@race.example", password="race-password-123"))
        for i in range(24)
    ]
    results = run_at_once([activate_call(client, code) for client in clients])
    outcomes = Counter(outcome(r) for r in results)
    assert outcomes == {(201, "ok"): 1, (409, "not_available"): 23}, outcomes
    key = ActivationKey.objects.get()
    assert key.status == KeyStatus.ACTIVATED
    assert Subscription.objects.count() == 1
    assert Subscription.objects.get().account == key.activated_account


def test_parallel_activations_of_one_key_by_one_account_give_one_subscription(customer, issue):
    [code] = issue()
    clients = [bearer_client(customer.user) for _ in range(12)]
    outcomes = Counter(outcome(r) for r in run_at_once([activate_call(c, code) for c in clients]))
    assert outcomes == {(201, "ok"): 1, (409, "already_activated"): 11}, outcomes
    assert Subscription.objects.count() == 1


def test_parallel_activations_of_different_keys_all_succeed(issue):
    codes = issue(quantity=20)
    clients = [
        bearer_client(create_account(name=f"Shop {i}", email=f"buyer{i}@race.example", password="race-password-123"))
        for i in range(20)
    ]
    outcomes = Counter(
        outcome(r) for r in run_at_once([activate_call(c, k) for c, k in zip(clients, codes, strict=True)])
    )
    assert outcomes == {(201, "ok"): 20}, outcomes
    assert Subscription.objects.count() == 20


def test_two_keys_cannot_both_renew_one_subscription(customer, issue):
    [first] = issue(months=6)
    renewals = issue(months=6, quantity=8)
    response = activate(customer, first)
    target = response.json()["subscription"]["id"]
    clients = [bearer_client(customer.user) for _ in renewals]
    results = run_at_once([activate_call(c, k, renew=target) for c, k in zip(clients, renewals, strict=True)])
    outcomes = Counter(outcome(r) for r in results)
    assert outcomes == {(201, "ok"): 1, (400, "invalid_renewal"): 7}, outcomes
    # Nothing half-written: the losing keys are still available for another try.
    assert ActivationKey.objects.filter(status=KeyStatus.AVAILABLE).count() == 7
    assert Subscription.objects.filter(renews_id=target).count() == 1


def test_one_issue_form_issues_one_batch_however_often_it_is_sent_at_once(reseller):
    """A double click or two tabs: the form's one-time token lets exactly one request issue."""
    import re

    from fiscobridge.keys.models import KeyBatch

    first = Client()
    first.force_login(reseller.user)
    page = first.get("/partner/issue/").content.decode()
    browsers = [first]
    for _ in range(5):  # the same browser session, sent again at the same moment
        again = Client()
        again.cookies = first.cookies
        browsers.append(again)
    nonce = re.search(r'name="nonce" value="([^"]+)"', page).group(1)
    form = {
        "product": "pos",
        "tier": "",
        "seats": 1,
        "months": 12,
        "quantity": 3,
        "reference": "",
        "redeem_by": "",
        "email": "",
        "nonce": nonce,
    }
    results = run_at_once([lambda b=b: b.post("/partner/issue/", form) for b in browsers])
    assert all(getattr(r, "status_code", None) == 200 for r in results), results
    assert KeyBatch.objects.count() == 1
    shown = [r for r in results if "Copy all codes" in r.content.decode()]
    assert len(shown) == 1  # the one batch's codes reach exactly one answer
