"""Integrations connections (SPEC 4.2): seats per tier, the trial, monthly invoice quotas, tenancy."""

import re
from collections import Counter

import pytest
import time_machine
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from fiscobridge.accounts.services import set_time_zone
from fiscobridge.audit.models import Event
from fiscobridge.core.errors import InvalidInput
from fiscobridge.integrations.errors import ConnectionAlreadyRemoved, ConnectionNotFound, NoActiveSubscription
from fiscobridge.integrations.models import Connection, InvoiceUsage
from fiscobridge.integrations.queries import get_connection_for_account, usage_by_tier, usage_of
from fiscobridge.integrations.services import create_connection, record_invoice_usage, remove_connection
from tests.factories import bearer_client, error_of, grant, outcome, post_json, run_at_once

CONNECTIONS = "/api/v1/integrations/connections"


def create(persona, tier="trial", type="xero", name="Main books"):
    return post_json(persona.client, CONNECTIONS, {"type": type, "tier": tier, "name": name})


def remove(persona, uid):
    return post_json(persona.client, f"{CONNECTIONS}/{uid}/remove", {})


def report(persona, uid, invoices):
    return post_json(persona.client, f"{CONNECTIONS}/{uid}/usage", {"invoices": invoices})


@pytest.fixture
def subscribe(customer, issue):
    """Give the customer a key-based Integrations subscription, activated through the API."""

    def _subscribe(tier="starter", seats=3):
        grant(customer, issue, product="int", tier=tier, seats=seats)

    return _subscribe


@pytest.fixture
def trial_connection(customer):
    response = create(customer, tier="trial")
    assert response.status_code == 201, response.content
    return response.json()["uid"]


# --- seats: the trial and the paid tiers -------------------------------------------------------


def test_trial_allows_one_connection_without_a_paid_subscription(customer):
    response = create(customer, tier="trial", type="zoho_books", name="  Zoho EU  ")
    assert response.status_code == 201
    body = response.json()
    assert re.fullmatch(r"K[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{10}", body["uid"])
    assert body | {"uid": None, "created_at": None} == {
        "uid": None,
        "type": "zoho_books",
        "tier": "trial",
        "name": "Zoho EU",
        "status": "active",
        "created_at": None,
        "invoices_this_month": 0,
        "invoice_limit": 50,
        "can_sync": True,
    }
    second = create(customer, tier="trial")
    assert second.status_code == 409
    assert error_of(second)["code"] == "seat_limit_reached"
    assert error_of(second)["details"] == {"tier": "trial", "seats_total": 1, "seats_used": 1}
    summary = customer.client.get("/api/v1/subscriptions").json()["int"]
    assert summary["trial"] == {"seats_total": 1, "seats_used": 1, "invoices_per_month": 50}
    assert Connection.objects.get().created_by == customer.user


def test_paid_subscription_ends_the_trial_and_its_own_seats_apply(customer, subscribe):
    subscribe(tier="starter", seats=3)
    trial = create(customer, tier="trial")
    assert trial.status_code == 409
    assert error_of(trial) == {
        "code": "trial_not_available",
        "message": "The free trial connection is only available without a paid Integrations subscription",
        "details": {},
    }
    for n in range(3):
        response = create(customer, tier="starter", name=f"Books {n}")
        assert response.status_code == 201
        assert response.json()["invoice_limit"] == 1500  # 500 per connection, times the tier's 3 seats
    fourth = create(customer, tier="starter")
    assert fourth.status_code == 409
    assert error_of(fourth)["code"] == "seat_limit_reached"
    assert error_of(fourth)["details"] == {"tier": "starter", "seats_total": 3, "seats_used": 3}
    assert Connection.objects.filter(account=customer.account).count() == 3


def test_seats_of_one_tier_do_not_buy_a_connection_of_another(customer, subscribe):
    subscribe(tier="growth", seats=2)
    assert create(customer, tier="growth", name="A").status_code == 201
    scale = create(customer, tier="scale")
    assert scale.status_code == 409 and error_of(scale)["code"] == "seat_limit_reached"
    starter = create(customer, tier="starter")
    assert starter.status_code == 409 and error_of(starter)["code"] == "seat_limit_reached"
    assert create(customer, tier="growth", name="B").status_code == 201
    assert error_of(create(customer, tier="growth", name="C"))["code"] == "seat_limit_reached"


def test_a_trial_connection_stops_syncing_when_a_paid_subscription_starts(customer, trial_connection, subscribe):
    assert report(customer, trial_connection, 5).status_code == 200
    subscribe(tier="starter", seats=1)
    # SPEC 4.2: a connection syncs only while its tier (or the trial) is available to the account.
    assert error_of(create(customer, tier="trial"))["code"] == "trial_not_available"
    response = report(customer, trial_connection, 5)
    assert response.status_code == 403
    assert error_of(response) == {
        "code": "no_active_subscription",
        "message": "This connection may not sync: its tier has no active Integrations subscription "
        "(a trial connection stops when a paid one starts)",
        "details": {},
    }
    [item] = customer.client.get(CONNECTIONS).json()["items"]
    assert (item["can_sync"], item["invoice_limit"], item["invoices_this_month"]) == (False, 0, 5)
    starter = create(customer, tier="starter").json()
    assert report(customer, starter["uid"], 5).json()["invoices_this_month"] == 5  # the tier's own count
    assert dict(InvoiceUsage.objects.values_list("tier", "invoices")) == {"trial": 5, "starter": 5}


def test_removing_a_connection_frees_its_seat_at_once(customer, subscribe):
    subscribe(tier="starter", seats=1)
    first = create(customer, tier="starter", name="First").json()
    assert error_of(create(customer, tier="starter"))["code"] == "seat_limit_reached"
    removed = remove(customer, first["uid"])
    assert removed.status_code == 200
    assert removed.json()["status"] == "removed" and removed.json()["uid"] == first["uid"]
    assert Connection.objects.get(uid=first["uid"]).removed_at is not None
    second = create(customer, tier="starter", name="Second")
    assert second.status_code == 201
    again = remove(customer, first["uid"])
    assert again.status_code == 409
    assert error_of(again)["code"] == "connection_already_removed"
    listing = customer.client.get(CONNECTIONS).json()["items"]
    assert [(c["name"], c["status"]) for c in listing] == [("First", "removed"), ("Second", "active")]
    active = customer.client.get(CONNECTIONS, {"status": "active"}).json()["items"]
    assert [c["name"] for c in active] == ["Second"]
    assert customer.client.get(CONNECTIONS, {"status": "gone"}).status_code == 422


def test_a_removed_trial_connection_can_be_replaced(customer, trial_connection):
    assert remove(customer, trial_connection).status_code == 200
    assert create(customer, tier="trial").status_code == 201


# --- monthly invoice quota ---------------------------------------------------------------------


def test_trial_connection_counts_up_to_fifty_invoices_a_month(customer, trial_connection):
    first = report(customer, trial_connection, 30)
    assert first.status_code == 200
    assert first.json()["invoices_this_month"] == 30 and first.json()["invoice_limit"] == 50
    assert report(customer, trial_connection, 20).json()["invoices_this_month"] == 50
    over = report(customer, trial_connection, 1)
    assert over.status_code == 429
    retry_after = int(over["Retry-After"])
    assert error_of(over) == {
        "code": "invoice_limit_reached",
        "message": "This connection's tier has reached its monthly invoice limit",
        "details": {"limit": 50, "used": 50, "retry_after": retry_after},
    }
    assert 0 < retry_after <= 31 * 24 * 3600
    assert InvoiceUsage.objects.get().invoices == 50
    [item] = customer.client.get(CONNECTIONS).json()["items"]
    assert item["invoices_this_month"] == 50


def test_a_report_that_would_pass_the_limit_counts_nothing(customer, trial_connection):
    assert report(customer, trial_connection, 40).status_code == 200
    over = report(customer, trial_connection, 11)
    assert over.status_code == 429 and error_of(over)["details"] | {"retry_after": 0} == {
        "limit": 50,
        "used": 40,
        "retry_after": 0,
    }
    assert report(customer, trial_connection, 10).json()["invoices_this_month"] == 50


def test_a_first_report_larger_than_the_limit_leaves_no_usage_row(customer, trial_connection):
    over = report(customer, trial_connection, 51)
    assert over.status_code == 429 and error_of(over)["details"]["used"] == 0
    assert not InvoiceUsage.objects.exists()


def test_starter_connection_has_the_default_quota_of_500(customer, subscribe):
    subscribe(tier="starter", seats=1)
    uid = create(customer, tier="starter").json()["uid"]
    assert report(customer, uid, 499).json()["invoices_this_month"] == 499
    assert report(customer, uid, 1).json()["invoices_this_month"] == 500
    over = report(customer, uid, 1)
    assert over.status_code == 429 and (error_of(over)["details"]["limit"], error_of(over)["details"]["used"]) == (
        500,
        500,
    )


def test_tier_quotas_come_from_settings(customer, subscribe, settings):
    settings.TIER_QUOTAS = {**settings.TIER_QUOTAS, "growth": (7, 15)}
    subscribe(tier="growth", seats=1)
    created = create(customer, tier="growth").json()
    assert created["invoice_limit"] == 7
    assert report(customer, created["uid"], 7).status_code == 200
    assert error_of(report(customer, created["uid"], 1))["details"]["limit"] == 7


def test_a_new_local_month_starts_a_fresh_count(customer):
    """ "This month" is the account's local month (SPEC 8): the default zone, Pacific/Fiji, is
    UTC+12 in 2027 (no daylight saving in the tz database), so February starts at 12:00 UTC on
    31 January; midnight UTC on 1 February starts nothing."""
    assert customer.account.time_zone == "Pacific/Fiji"
    with time_machine.travel("2027-01-31 11:59:00Z", tick=False) as traveller:
        uid = create(customer, tier="trial").json()["uid"]
        assert report(customer, uid, 50).status_code == 200
        assert report(customer, uid, 1).status_code == 429
        traveller.move_to("2027-01-31 12:00:00Z")  # 1 Feb 00:00 in Suva
        [item] = customer.client.get(CONNECTIONS).json()["items"]
        assert item["invoices_this_month"] == 0
        assert report(customer, uid, 50).json()["invoices_this_month"] == 50
        traveller.move_to("2027-02-01 00:00:00Z")  # the UTC month's start: still February's count
        assert report(customer, uid, 1).status_code == 429
    months = dict(InvoiceUsage.objects.values_list("month", "invoices"))
    assert {m.isoformat(): n for m, n in months.items()} == {"2027-01-01": 50, "2027-02-01": 50}


def test_the_quota_month_follows_the_account_zone_at_utc_plus_13(customer):
    set_time_zone(tenant=customer.account, time_zone="Pacific/Apia", actor=customer.user)
    with time_machine.travel("2027-02-28 10:59:59Z", tick=False) as traveller:  # 28 Feb 23:59:59 in Apia
        uid = create(customer, tier="trial").json()["uid"]
        assert report(customer, uid, 50).status_code == 200
        over = report(customer, uid, 1)
        assert over.status_code == 429 and over["Retry-After"] == "1"  # one second to midnight in Apia
        traveller.move_to("2027-02-28 11:00:00Z")  # 1 Mar 00:00 in Apia
        assert report(customer, uid, 50).json()["invoices_this_month"] == 50
        over = report(customer, uid, 1)  # 31 days of March until 1 Apr 00:00 in Apia (UTC+13)
        assert over.status_code == 429 and int(over["Retry-After"]) == 31 * 24 * 3600
        assert error_of(over)["details"]["retry_after"] == 31 * 24 * 3600
    months = dict(InvoiceUsage.objects.values_list("month", "invoices"))
    assert {m.isoformat(): n for m, n in months.items()} == {"2027-02-01": 50, "2027-03-01": 50}


def test_removing_and_re_creating_the_trial_connection_does_not_reset_its_month(customer, trial_connection):
    assert report(customer, trial_connection, 50).status_code == 200
    assert remove(customer, trial_connection).status_code == 200
    again = create(customer, tier="trial").json()
    assert again["invoices_this_month"] == 50  # the count belongs to the account and the trial
    over = report(customer, again["uid"], 1)
    assert over.status_code == 429 and error_of(over)["code"] == "invoice_limit_reached"
    assert InvoiceUsage.objects.get().invoices == 50


def test_removing_and_re_creating_a_paid_connection_does_not_reset_its_month(customer, subscribe):
    subscribe(tier="starter", seats=1)
    first = create(customer, tier="starter", name="First").json()["uid"]
    assert report(customer, first, 480).status_code == 200
    remove(customer, first)
    second = create(customer, tier="starter", name="Second").json()["uid"]
    assert report(customer, second, 20).json()["invoices_this_month"] == 500
    assert report(customer, second, 1).status_code == 429


def test_each_seat_of_a_tier_adds_its_quota_to_the_tiers_month(customer, subscribe):
    subscribe(tier="starter", seats=2)
    a = create(customer, tier="starter", name="A").json()["uid"]
    b = create(customer, tier="starter", name="B").json()["uid"]
    assert report(customer, a, 700).json() | {"uid": None, "created_at": None} == {
        "uid": None,
        "created_at": None,
        "type": "xero",
        "tier": "starter",
        "name": "A",
        "status": "active",
        "invoices_this_month": 700,
        "invoice_limit": 1000,
        "can_sync": True,
    }
    assert report(customer, b, 300).json()["invoices_this_month"] == 1000
    assert error_of(report(customer, a, 1))["details"]["used"] == 1000
    subscribe(tier="starter", seats=1)  # a third seat: 500 more this month, for every connection of the tier
    assert report(customer, b, 500).json()["invoices_this_month"] == 1500


def test_a_connection_stops_syncing_when_its_tiers_subscription_ends(customer, subscribe):
    with time_machine.travel("2027-03-10 00:00:00Z", tick=False) as traveller:
        subscribe(tier="growth", seats=1)  # 12 months
        uid = create(customer, tier="growth").json()["uid"]
        assert report(customer, uid, 10).status_code == 200
        traveller.move_to("2028-03-10 00:00:01Z")
        response = report(customer, uid, 1)
        assert response.status_code == 403 and error_of(response)["code"] == "no_active_subscription"
        [item] = customer.client.get(CONNECTIONS).json()["items"]
        assert (item["status"], item["can_sync"], item["invoice_limit"]) == ("active", False, 0)
        connection = Connection.objects.get(uid=uid)
        with pytest.raises(NoActiveSubscription):
            record_invoice_usage(connection=connection, invoices=1)
        # Only the trial seat is offered now (no paid Integrations seat is active): and it syncs.
        trial = create(customer, tier="trial").json()["uid"]
        assert report(customer, trial, 1).status_code == 200
    assert dict(InvoiceUsage.objects.values_list("tier", "invoices")) == {"growth": 10, "trial": 1}


def test_usage_on_a_removed_connection_is_refused(customer, trial_connection):
    remove(customer, trial_connection)
    response = report(customer, trial_connection, 1)
    assert response.status_code == 409
    assert error_of(response)["code"] == "connection_already_removed"
    assert not InvoiceUsage.objects.exists()


def test_list_reads_usage_in_one_query_whatever_the_number_of_connections(customer, subscribe):
    subscribe(tier="scale", seats=5)

    def queries_for_list():
        with CaptureQueriesContext(db_connection) as captured:
            assert customer.client.get(CONNECTIONS).status_code == 200
        return len(captured)

    uid = create(customer, tier="scale", name="one").json()["uid"]
    report(customer, uid, 3)
    one = queries_for_list()
    for n in range(4):
        report(customer, create(customer, tier="scale", name=f"more {n}").json()["uid"], n + 1)
    assert queries_for_list() == one
    items = customer.client.get(CONNECTIONS).json()["items"]
    # One count per tier, shared by its connections; the limit is 10,000 per connection times 5 seats.
    assert [i["invoices_this_month"] for i in items] == [13] * 5
    assert [i["invoice_limit"] for i in items] == [50_000] * 5


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("invoices", [0, -1, "x", 1.5, True, None, 10**12])
def test_usage_needs_a_positive_whole_number(customer, trial_connection, invoices):
    response = report(customer, trial_connection, invoices)
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_request"
    assert not InvoiceUsage.objects.exists()


def test_usage_without_a_body_is_refused(customer, trial_connection):
    assert post_json(customer.client, f"{CONNECTIONS}/{trial_connection}/usage", {}).status_code == 422


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "sage", "tier": "trial", "name": "x"},
        {"type": "xero", "tier": "enterprise", "name": "x"},
        {"type": "XERO", "tier": "trial", "name": "x"},
        {"type": "xero", "tier": "trial", "name": ""},
        {"type": "xero", "tier": "trial", "name": "n" * 201},
        {"type": "xero", "tier": "trial"},
        {"tier": "trial", "name": "x"},
    ],
)
def test_create_rejects_malformed_input(customer, payload):
    response = post_json(customer.client, CONNECTIONS, payload)
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_request"
    assert not Connection.objects.exists()


@pytest.mark.parametrize("name", ["   ", "bad\x00name", "tab\tname"])
def test_create_rejects_blank_names_and_control_characters(customer, name):
    response = create(customer, name=name)
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_input"
    assert error_of(response)["details"] == {"field": "name"}


def test_a_name_of_200_characters_is_accepted(customer):
    response = create(customer, name="n" * 200)
    assert response.status_code == 201 and response.json()["name"] == "n" * 200


def test_services_check_their_input_whoever_calls_them(customer):
    with pytest.raises(InvalidInput) as error:
        create_connection(account=customer.account, actor=customer.user, type="sage", tier="trial", name="x")
    assert error.value.details == {"field": "type"}
    with pytest.raises(InvalidInput) as error:
        create_connection(account=customer.account, actor=customer.user, type="xero", tier="gold", name="x")
    assert error.value.details == {"field": "tier"}
    connection = create_connection(account=customer.account, actor=None, type="custom", tier="trial", name="ERP")
    assert connection.created_by is None
    for invoices in (0, -1, True, "3", 2.0):
        with pytest.raises(InvalidInput):
            record_invoice_usage(connection=connection, invoices=invoices)
    assert record_invoice_usage(connection=connection, invoices=2).used == 2
    with pytest.raises(InvalidInput):
        record_invoice_usage(connection=connection, invoices=10**30)
    assert (usage_of(connection).used, usage_of(connection).limit) == (2, 50)
    assert {tier: month.used for tier, month in usage_by_tier(customer.account).items()} == {
        "starter": 0,
        "growth": 0,
        "scale": 0,
        "trial": 2,
    }
    remove_connection(connection=connection, actor=None)
    with pytest.raises(ConnectionAlreadyRemoved):
        remove_connection(connection=connection, actor=None)
    with pytest.raises(ConnectionAlreadyRemoved):
        record_invoice_usage(connection=connection, invoices=1)


# --- tenancy -----------------------------------------------------------------------------------


def test_another_account_gets_404_for_a_connection_it_does_not_own(customer, outsider, trial_connection):
    for response in (remove(outsider, trial_connection), report(outsider, trial_connection, 1)):
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"
    assert outsider.client.get(CONNECTIONS).json() == {"items": []}
    assert Connection.objects.get().status == "active"
    assert not InvoiceUsage.objects.exists()
    assert remove(customer, "KNOSUCHUID22").status_code == 404
    assert report(customer, "K%00", 1).status_code == 404
    with pytest.raises(ConnectionNotFound) as error:
        get_connection_for_account(outsider.account, trial_connection)
    assert error.value.http_status == 404


def test_seats_are_counted_per_account(customer, outsider, trial_connection):
    assert create(outsider, tier="trial").status_code == 201


def test_a_teammate_manages_the_accounts_connections(customer, teammate, trial_connection):
    assert [c["uid"] for c in teammate.client.get(CONNECTIONS).json()["items"]] == [trial_connection]
    assert report(teammate, trial_connection, 3).json()["invoices_this_month"] == 3
    assert remove(teammate, trial_connection).status_code == 200


def test_partners_are_refused_with_403(reseller, customer, trial_connection):
    responses = [
        reseller.client.get(CONNECTIONS),
        create(reseller),
        remove(reseller, trial_connection),
        report(reseller, trial_connection, 1),
    ]
    assert [(r.status_code, error_of(r)["code"]) for r in responses] == [(403, "forbidden")] * 4


def test_anonymous_callers_get_401(anonymous, customer, trial_connection):
    responses = [
        anonymous.get(CONNECTIONS),
        post_json(anonymous, CONNECTIONS, {"type": "xero", "tier": "trial", "name": "x"}),
        post_json(anonymous, f"{CONNECTIONS}/{trial_connection}/remove", {}),
        post_json(anonymous, f"{CONNECTIONS}/{trial_connection}/usage", {"invoices": 1}),
    ]
    assert [(r.status_code, error_of(r)["code"]) for r in responses] == [(401, "unauthenticated")] * 4
    assert Connection.objects.get().status == "active"


# --- audit -------------------------------------------------------------------------------------


def test_create_and_remove_are_audited(customer, trial_connection):
    remove(customer, trial_connection)
    connection = Connection.objects.get()
    events = {e.action: e for e in Event.objects.filter(action__startswith="connection.")}
    assert set(events) == {"connection.created", "connection.removed"}
    for event in events.values():
        assert event.actor == customer.user and event.account == customer.account
        assert (event.target_type, event.target_id) == ("integrations.connection", str(connection.pk))
        assert event.ip == "127.0.0.1"
    assert events["connection.created"].details == {
        "uid": trial_connection,
        "type": "xero",
        "tier": "trial",
        "name": "Main books",
    }
    assert events["connection.removed"].details == {"uid": trial_connection, "type": "xero", "tier": "trial"}


def test_refused_actions_are_not_audited(customer, trial_connection):
    create(customer, tier="trial")
    remove(customer, trial_connection)
    remove(customer, trial_connection)
    assert Counter(Event.objects.filter(action__startswith="connection.").values_list("action", flat=True)) == {
        "connection.created": 1,
        "connection.removed": 1,
    }


# --- concurrency (PostgreSQL: row locks and conditional updates under real threads) ---------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_creates_into_three_free_seats_give_exactly_three_connections(customer, subscribe):
    subscribe(tier="starter", seats=3)
    clients = [bearer_client(customer.user) for _ in range(8)]
    results = run_at_once(
        [
            (lambda c=c, n=n: post_json(c, CONNECTIONS, {"type": "xero", "tier": "starter", "name": f"race {n}"}))
            for n, c in enumerate(clients)
        ]
    )
    outcomes = Counter(outcome(r) for r in results)
    assert outcomes == {(201, "ok"): 3, (409, "seat_limit_reached"): 5}, outcomes
    assert Connection.objects.filter(account=customer.account, status="active", tier="starter").count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_usage_reports_never_pass_the_monthly_limit(customer):
    uid = create(customer, tier="trial").json()["uid"]  # 50 invoices a month; no usage row yet
    clients = [bearer_client(customer.user) for _ in range(10)]
    results = run_at_once([(lambda c=c: post_json(c, f"{CONNECTIONS}/{uid}/usage", {"invoices": 10})) for c in clients])
    outcomes = Counter(outcome(r) for r in results)
    assert outcomes == {(200, "ok"): 5, (429, "invoice_limit_reached"): 5}, outcomes
    assert InvoiceUsage.objects.get().invoices == 50
    totals = sorted(r.json()["invoices_this_month"] for r in results if r.status_code == 200)
    assert totals == [10, 20, 30, 40, 50]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_reports_from_two_connections_never_pass_their_tiers_limit(customer, subscribe, settings):
    settings.TIER_QUOTAS = {**settings.TIER_QUOTAS, "starter": (25, 60)}
    subscribe(tier="starter", seats=2)  # 50 invoices a month for the tier, shared
    uids = [create(customer, tier="starter", name=f"C{n}").json()["uid"] for n in range(2)]
    clients = [bearer_client(customer.user) for _ in range(10)]
    results = run_at_once(
        [
            (lambda c=c, uid=uids[n % 2]: post_json(c, f"{CONNECTIONS}/{uid}/usage", {"invoices": 10}))
            for n, c in enumerate(clients)
        ]
    )
    outcomes = Counter(outcome(r) for r in results)
    assert outcomes == {(200, "ok"): 5, (429, "invoice_limit_reached"): 5}, outcomes
    assert InvoiceUsage.objects.get(tier="starter").invoices == 50
