"""The lean hot paths (issue 9): the statements each request runs are pinned, so they stay lean.

Counts are of statements sent to the database, on each database (SQLite writes an attempt and its
audit events in two statements, PostgreSQL in one). Durations are measured by `make bench`,
never here.
"""

import json
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from ninja.renderers import JSONRenderer

from fiscobridge.api.schemas import ActivatedOut, ConnectionOut, EntitlementOut, LeaseOut, PreviewOut
from fiscobridge.core import clock
from fiscobridge.integrations.models import InvoiceUsage
from fiscobridge.keys import hot_sql
from fiscobridge.keys.codes import code_digest, generate_code, parse_key
from fiscobridge.pos.entitlement import entitlements_for_account
from fiscobridge.pos.models import Certificate
from fiscobridge.subscriptions.capacity import int_capacity_by_tier, pos_capacity
from fiscobridge.subscriptions.models import Subscription
from fiscobridge.subscriptions.services import RENEWAL_OPTIONS_SHOWN, end_subscription, renewable_subscriptions
from tests.factories import activate, new_pfx, post_json, upload_pfx, validate

START = "2027-03-01 12:00:00Z"


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def together(statements: int) -> int:
    """Round trips for independent writes sent together (keys/hot_sql.py `write_attempt`): one on
    PostgreSQL, one each on SQLite."""
    return 1 if on_postgres() else statements


def statements(request, status: int) -> list[str]:
    """The SQL the request `request()` sends (its answer must have `status`), without the
    SAVEPOINT/RELEASE that the test's own transaction turns an outermost `atomic` into (in
    production that is BEGIN … COMMIT, not a statement)."""
    with CaptureQueriesContext(connection) as captured:
        response = request()
    assert response.status_code == status, response.content
    return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]


@pytest.fixture
def warm(customer):
    """The token has been used this minute, so authentication does not also touch last_used_at."""
    assert validate(customer, generate_code("pos")).status_code == 409
    return customer


def test_validate_runs_three_statements(warm, issue):
    [code] = issue()
    sql = statements(lambda: validate(warm, code), 200)
    # token; the lockout, the key, capacity and renewal options together; the attempt and its event
    assert len(sql) == 2 + together(2), sql


def test_activate_runs_one_short_transaction(warm, issue):
    [code] = issue()
    sql = statements(lambda: activate(warm, code), 201)
    # token; then in one transaction: the conditional UPDATE … RETURNING (with the lockout check;
    # on PostgreSQL it also reserves the subscription's id; it also reads whether an endpoint of
    # the partner listens to webhooks: none here, so no webhook writes), and together the
    # subscription, the attempt, its two events, the e-mail task and the rollup's pending row
    # (an INSERT: no row shared with other activations is locked)
    assert len(sql) == 2 + together(5), sql
    assert not any(s.startswith(("UPDATE keys_keybatchcounts", "INSERT INTO keys_activationhour")) for s in sql)
    assert any("keys_pendingactivation" in s for s in sql)
    claim = sql[1]
    assert claim.startswith("UPDATE keys_activationkey") and "keys_failurecounter" in claim and "RETURNING" in claim
    assert "webhooks_endpoint" in claim and not any("webhooks_" in s for s in sql[2:])
    assert not any("outbound" in s.lower() for s in sql)  # no e-mail in the request: a task row
    assert any("dbtaskresult" in s for s in sql)


def test_a_failed_attempt_counts_on_its_counters_in_two_statements(warm):
    sql = statements(lambda: validate(warm, generate_code("pos")), 409)
    # token, the lockout with the key; then, in one transaction, the three counters (open their
    # windows under row locks, add the failure) and the attempt with its event
    assert len(sql) == 4 + together(2), sql
    assert sql[2].startswith("INSERT INTO keys_failurecounter") and "ON CONFLICT" in sql[2]


def test_token_authentication_is_one_query(warm):
    sql = statements(lambda: warm.client.get("/api/v1/subscriptions"), 200)
    assert sum("accounts_apitoken" in s for s in sql) == 1 and "accounts_user" in sql[0], sql


# --- the hand-written SQL answers as the ORM rules do ----------------------------------------


def _key_subscription(customer, issue, **package):
    [code] = issue(**package)
    assert activate(customer, code, package.get("product", "pos")).status_code == 201
    return Subscription.objects.filter(account=customer.account).latest("id")


def test_capacity_and_renewals_agree_with_the_orm_rules(customer, staff, issue):
    with time_machine.travel(START, tick=False) as travel:
        first = _key_subscription(customer, issue, seats=2, months=1)
        renewal = activate(customer, issue(seats=3)[0], renew=first.pk).json()["subscription"]
        _key_subscription(customer, issue, seats=5, months=6)
        ended = _key_subscription(customer, issue, seats=7)
        end_subscription(subscription=ended, reason="test", actor=staff.user)
        _key_subscription(customer, issue, product="int", tier="growth", seats=4)
        travel.shift(timedelta(days=10))
        moment = clock.now()
        offered = {}
        for product, tier, capacity in (
            ("pos", "", pos_capacity(customer.account, moment)),
            ("int", "growth", int_capacity_by_tier(customer.account, moment)["growth"]),
            ("int", "scale", 0),
        ):
            [fresh] = issue(product=product, tier=tier)
            facts = hot_sql.key_facts(
                digest=code_digest(parse_key(fresh).canonical),
                account_id=customer.account.pk,
                scopes=[("session", "none")],
                moment=moment,
                renewal_limit=50,
            )
            expected = renewable_subscriptions(account=customer.account, product=product, tier=tier, at=moment)
            assert facts.lock is None and facts.key.product == product
            assert facts.capacity == capacity
            assert facts.renewable == [(s.pk, s.expires_at, s.key_hint) for s in expected]
            offered[product + tier] = {pk for pk, _, _ in facts.renewable}
        # The renewed one is not offered again; its scheduled renewal is; the ended one is not.
        assert first.pk not in offered["pos"] and renewal["id"] in offered["pos"] and ended.pk not in offered["pos"]
        assert pos_capacity(customer.account, moment) == 2 + 5  # the renewal has not started yet


def test_renewal_options_are_bounded_and_soonest_ending_first(customer, issue):
    codes = issue(quantity=RENEWAL_OPTIONS_SHOWN + 3, months=1)
    with time_machine.travel(START, tick=False) as travel:
        for code in codes:
            assert activate(customer, code).status_code == 201
            travel.shift(timedelta(hours=1))
        [fresh] = issue(months=1)
        body = validate(customer, fresh).json()
    options = body["renewal_options"]
    assert len(options) == RENEWAL_OPTIONS_SHOWN
    ends = [o["current_expires_at"] for o in options]
    assert ends == sorted(ends)
    soonest = Subscription.objects.filter(account=customer.account).order_by("expires_at", "id")
    assert [o["subscription_id"] for o in options] == [s.pk for s in soonest[:RENEWAL_OPTIONS_SHOWN]]
    assert body["seats_total_after"] == 2 * (RENEWAL_OPTIONS_SHOWN + 3) + 2  # capacity counts them all


# --- the machine hot paths: entitlement and usage ---------------------------------------------


def test_entitlement_is_one_statement_and_agrees_with_the_seat_order(warm, staff, issue):
    [code] = issue(seats=2)
    assert activate(warm, code).status_code == 201
    uids = [upload_pfx(warm, new_pfx(org=f"Shop {i}")).json()["uid"] for i in range(2)]
    ended = Subscription.objects.get(account=warm.account)
    [more] = issue(seats=1)
    assert activate(warm, more).status_code == 201
    uids.append(upload_pfx(warm, new_pfx(org="Shop 3")).json()["uid"])
    end_subscription(subscription=ended, reason="test", actor=staff.user)  # capacity 3 → 1
    revoke = warm.client.post(f"/api/v1/pos/certificates/{uids[0]}/revoke")
    assert revoke.status_code == 200
    by_pk = entitlements_for_account(warm.account)
    for uid in uids:
        sql = statements(lambda uid=uid: warm.client.get(f"/api/v1/pos/certificates/{uid}/entitlement"), 200)
        assert len(sql) == 2, sql  # the token, then one statement
        body = warm.client.get(f"/api/v1/pos/certificates/{uid}/entitlement").json()
        expected = by_pk[Certificate.objects.get(uid=uid).pk]
        assert body == {"can_sign": expected.can_sign, "reason": expected.reason}
    assert [warm.client.get(f"/api/v1/pos/certificates/{u}/entitlement").json()["reason"] for u in uids] == [
        "revoked",
        "ok",
        "over_seat_limit",
    ]


def test_lease_is_three_statements_after_the_token_with_the_signing_key_cached(warm, issue):
    [code] = issue(seats=2)
    assert activate(warm, code).status_code == 201
    uids = [upload_pfx(warm, new_pfx(org=f"Shop {i}")).json()["uid"] for i in range(2)]
    Subscription.objects.filter(account=warm.account).update(seats=1)  # the second is over the limit
    lease = lambda uid: lambda: post_json(warm.client, f"/api/v1/pos/certificates/{uid}/lease", {})  # noqa: E731
    sql = statements(lease(uids[0]), 200)
    # the token; the entitlement's one statement; the signing key (read once per process and
    # LEASE_KEY_CACHE_SECONDS; made here, the first ever); the subscription dates; the audit event
    assert len(sql) == 1 + 1 + 2 + 1 + 1, sql
    assert "leases_signingkey" in sql[2] and "leases_signingkey" in sql[3]
    sql = statements(lease(uids[0]), 200)
    assert len(sql) == 4, sql  # the key now comes from the process cache
    assert "pos_certificate" in sql[1] and "subscriptions_subscription" in sql[2]
    assert sql[3].startswith("INSERT INTO") and "audit_event" in sql[3]
    sql = statements(lease(uids[1]), 200)  # over the seat limit: a "no" needs no subscription dates
    assert len(sql) == 3, sql


def test_usage_is_one_statement_after_the_connection(warm):
    uid = warm.client.post(
        "/api/v1/integrations/connections", {"type": "xero", "tier": "trial", "name": "Books"}, "application/json"
    ).json()["uid"]
    url = f"/api/v1/integrations/connections/{uid}/usage"
    for expected_total in (3, 6):
        sql = statements(lambda: post_json(warm.client, url, {"invoices": 3}), 200)
        assert len(sql) == 3, sql  # the token, the connection, the counting upsert
        assert sql[2].startswith("INSERT INTO integrations_invoiceusage") and "ON CONFLICT" in sql[2]
        assert InvoiceUsage.objects.get().invoices == expected_total


def test_hot_path_answers_match_their_declared_schemas(warm, issue):
    """These routes render their dicts directly (api/answers.py): each answer must still be
    exactly what its declared response schema says, with the content type of every other route."""
    first, second = issue(quantity=2)
    activated = activate(warm, first)
    assert activated.status_code == 201
    preview = validate(warm, second)
    assert preview.json()["renewal_options"]  # the list is filled, so its items are checked too
    connection = warm.client.post(
        "/api/v1/integrations/connections", {"type": "xero", "tier": "trial", "name": "Books"}, "application/json"
    )
    usage = post_json(
        warm.client, f"/api/v1/integrations/connections/{connection.json()['uid']}/usage", {"invoices": 1}
    )
    uid = upload_pfx(warm, new_pfx()).json()["uid"]
    entitlement = warm.client.get(f"/api/v1/pos/certificates/{uid}/entitlement")
    lease = post_json(warm.client, f"/api/v1/pos/certificates/{uid}/lease", {})
    for response, schema in (
        (activated, ActivatedOut),
        (preview, PreviewOut),
        (usage, ConnectionOut),
        (entitlement, EntitlementOut),
        (lease, LeaseOut),
    ):
        assert response["Content-Type"] == connection["Content-Type"] == "application/json; charset=utf-8"
        body = response.json()
        # What ninja itself would have rendered after checking the dict against the schema:
        checked = json.loads(json.dumps(schema.model_validate(body).model_dump(), cls=JSONRenderer.encoder_class))
        assert checked == body, schema


# --- instances built from raw rows (core/hot_sql.py RowReader) -------------------------------


def test_a_row_reader_builds_what_the_orm_loads_with_the_other_columns_deferred(customer):
    from fiscobridge.accounts.models import ApiToken
    from fiscobridge.core.hot_sql import RowReader

    token = ApiToken.objects.filter(user=customer.user).first()
    reader = RowReader(ApiToken, ["id", "user_id", "prefix", "created_at", "revoked_at"])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {reader.sql('t')} FROM accounts_apitoken t WHERE t.id = %s", [token.pk])
        built = reader.build(cursor.fetchone())
    assert (built.pk, built.user_id, built.prefix, built.created_at, built.revoked_at) == (
        token.pk,
        token.user_id,
        token.prefix,
        token.created_at,
        None,
    )
    assert built.created_at.tzinfo is not None and built._state.adding is False and built._state.db == "default"
    assert built.get_deferred_fields() == {f.attname for f in ApiToken._meta.concrete_fields} - set(reader.columns)
    assert built.name == token.name  # a deferred column loads on first use, as after .only()
    assert reader.build([None] * len(reader.columns)) is None


def test_a_row_reader_goes_through_model_init_when_a_receiver_listens(customer):
    """Skipping Model.__init__ is safe only while no pre_init/post_init receiver listens to the model."""
    from django.db.models.signals import post_init

    from fiscobridge.accounts.models import ApiToken
    from fiscobridge.core.hot_sql import RowReader

    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=ApiToken)
    try:
        reader = RowReader(ApiToken, ["id", "prefix"])
        token = ApiToken.objects.filter(user=customer.user).first()
        built = reader.build([token.pk, token.prefix])
    finally:
        post_init.disconnect(receiver, sender=ApiToken)
    assert seen[-1] is built and built.prefix == token.prefix
