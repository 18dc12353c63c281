"""Scoped API tokens (issue 10, item 9; docs/api-tokens.md): each scope opens exactly its routes
and no other, legacy tokens keep full access, browser sessions are not limited, and every route
of the API names the scopes that open it (so a new route cannot slip past the table)."""

import re
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fiscobridge.accounts.models import ApiToken
from fiscobridge.accounts.scopes import Scope
from fiscobridge.accounts.services import create_api_token
from fiscobridge.api.api import api
from fiscobridge.api.auth import BearerToken
from fiscobridge.audit.models import Event
from fiscobridge.core.errors import InvalidInput
from fiscobridge.keys.models import ActivationKey, KeyStatus
from fiscobridge.webhooks.services import create_endpoint
from tests.factories import (
    assert_error,
    browser_for,
    new_pfx,
    owned_objects,
    post_json,
    token_client,
    upload_pfx,
)

S = Scope
CUSTOMER, PARTNER = "customer", "partner"

# The contract, written out by hand (not read from the code): route → (kind of user it serves,
# the scopes that open it besides `all`, the status a well-formed call answers). In the order the
# calls are made: a connection reports usage before it is removed.
ROUTES = {
    "POST /keys/validate": (CUSTOMER, {S.KEYS_REDEEM}, 200),
    "POST /keys/activate": (CUSTOMER, {S.KEYS_REDEEM}, 201),
    "GET /subscriptions": (CUSTOMER, {S.READ}, 200),
    "GET /pos/certificates": (CUSTOMER, {S.POS_CERTIFICATES, S.READ}, 200),
    "POST /pos/certificates": (CUSTOMER, {S.POS_CERTIFICATES}, 201),
    "POST /pos/certificates/{uid}/revoke": (CUSTOMER, {S.POS_CERTIFICATES}, 200),
    "GET /pos/certificates/{uid}/entitlement": (CUSTOMER, {S.POS_ENTITLEMENT, S.READ}, 200),
    "POST /pos/certificates/{uid}/lease": (CUSTOMER, {S.POS_ENTITLEMENT}, 200),
    "GET /integrations/connections": (CUSTOMER, {S.INTEGRATIONS_CONNECTIONS, S.READ}, 200),
    "POST /integrations/connections": (CUSTOMER, {S.INTEGRATIONS_CONNECTIONS}, 201),
    "POST /integrations/connections/{uid}/usage": (CUSTOMER, {S.INTEGRATIONS_USAGE}, 200),
    "POST /integrations/connections/{uid}/remove": (CUSTOMER, {S.INTEGRATIONS_CONNECTIONS}, 200),
    "POST /partner/keys": (PARTNER, {S.PARTNER_KEYS}, 201),
    "GET /partner/keys": (PARTNER, {S.PARTNER_KEYS, S.READ}, 200),
    "POST /partner/keys/lookup": (PARTNER, {S.PARTNER_KEYS, S.READ}, 200),
    "POST /partner/keys/{id}/revoke": (PARTNER, {S.PARTNER_KEYS}, 200),
    # Webhooks: the partner's keys scope (their events are about its keys); DELETE last.
    "GET /partner/webhooks": (PARTNER, {S.PARTNER_KEYS, S.READ}, 200),
    "POST /partner/webhooks": (PARTNER, {S.PARTNER_KEYS}, 201),
    "GET /partner/webhooks/{endpoint_id}": (PARTNER, {S.PARTNER_KEYS, S.READ}, 200),
    "PATCH /partner/webhooks/{endpoint_id}": (PARTNER, {S.PARTNER_KEYS}, 200),
    "GET /partner/webhooks/{endpoint_id}/deliveries": (PARTNER, {S.PARTNER_KEYS, S.READ}, 200),
    "POST /partner/webhooks/deliveries/{delivery_id}/resend": (PARTNER, {S.PARTNER_KEYS}, 202),
    "DELETE /partner/webhooks/{endpoint_id}": (PARTNER, {S.PARTNER_KEYS}, 204),
}

API = "/api/v1"


def call(client: Client, route: str, ids: dict):
    """A well-formed request to `route` on the objects of `owned_objects`: only the token's
    scopes (or its kind) can make it fail."""
    method, template = route.split(" ")
    path = API + template.replace("{uid}", ids["certificate"] if "/pos/" in template else ids["connection"])
    path = path.replace("{id}", str(ids["key_id"]))
    path = path.replace("{endpoint_id}", str(ids["endpoint_id"])).replace("{delivery_id}", str(ids["delivery_id"]))
    if method == "GET":
        return client.get(path)
    if method == "DELETE":
        return client.delete(path)
    if method == "PATCH":
        return client.patch(path, {"description": "Changed"}, content_type="application/json")
    body = {
        "POST /keys/validate": {"key": ids["code"], "product": "pos"},
        "POST /keys/activate": {"key": ids["code"], "product": "pos"},
        "POST /integrations/connections": {"type": "zoho_books", "tier": "starter", "name": "Second"},
        "POST /integrations/connections/{uid}/usage": {"invoices": 3},
        "POST /partner/keys": {"product": "pos", "seats": 1, "months": 1, "quantity": 1},
        "POST /partner/keys/lookup": {"key": ids["lookup_code"]},
        "POST /partner/keys/{id}/revoke": {"reason": "lost"},
        "POST /partner/webhooks": {"url": "https://hooks.example.com/new", "events": ["key.revoked"]},
    }.get(route)
    if route == "POST /pos/certificates":
        return upload_pfx(client, new_pfx(cn="b.example"))
    return post_json(client, path, body or {})


@pytest.fixture
def ids(customer, reseller, issue):
    objects = owned_objects(customer, reseller, issue)
    created = create_endpoint(
        partner=reseller.partner, actor=reseller.user, url="https://hooks.example.com/fb", events=["batch.issued"]
    )
    issue()  # a batch: one delivery to the endpoint
    return {**objects, "endpoint_id": created.endpoint.pk, "delivery_id": created.endpoint.deliveries.get().pk}


def limited_client(persona, *scopes) -> Client:
    return token_client(create_api_token(user=persona.user, name="limited", scopes=scopes).plain)


# --- each scope opens its routes and refuses every other ----------------------------------------

# (scope, persona holding it): `read` is tried by both kinds.
HOLDERS = [(scope, CUSTOMER) for scope in S if scope not in (S.ALL, S.READ, S.PARTNER_KEYS)] + [
    (S.PARTNER_KEYS, PARTNER),
    (S.READ, CUSTOMER),
    (S.READ, PARTNER),
    (S.ALL, CUSTOMER),
    (S.ALL, PARTNER),
]


@pytest.mark.parametrize(("scope", "kind"), HOLDERS, ids=[f"{s.value}-{k}" for s, k in HOLDERS])
def test_each_scope_opens_its_routes_and_refuses_the_others(scope, kind, customer, reseller, ids):
    client = limited_client(customer if kind == CUSTOMER else reseller, scope)
    for route, (serves, opened_by, success) in ROUTES.items():
        response = call(client, route, ids)
        if scope == S.ALL or scope in opened_by:
            if serves == kind:
                assert response.status_code == success, (route, response.status_code, response.content[:300])
            else:  # the scope opens the route, the kind of user does not: 403 `forbidden`, as without scopes
                assert_error(response, 403, "forbidden")
        else:
            error = assert_error(response, 403, "insufficient_scope")
            assert error["details"]["required"] in {s.value for s in opened_by}, (route, error)
            assert set(error["details"]["accepted"]) == {"all", *(s.value for s in opened_by)}, (route, error)


def test_a_refused_scope_changes_nothing_and_is_checked_before_the_body(customer, reseller, ids):
    client = limited_client(customer, S.POS_ENTITLEMENT)
    before = (ActivationKey.objects.filter(status=KeyStatus.AVAILABLE).count(), Event.objects.count())
    # a body the schema refuses still hears about the scope first: nothing was read
    response = post_json(client, f"{API}/keys/activate", {"key": 42})
    assert_error(response, 403, "insufficient_scope")
    assert_error(call(client, "POST /keys/activate", ids), 403, "insufficient_scope")
    assert (ActivationKey.objects.filter(status=KeyStatus.AVAILABLE).count(), Event.objects.count()) == before


def test_a_token_with_several_scopes_opens_each_of_their_routes(customer, ids):
    client = limited_client(customer, S.POS_ENTITLEMENT, S.INTEGRATIONS_USAGE)
    assert call(client, "GET /pos/certificates/{uid}/entitlement", ids).status_code == 200
    assert call(client, "POST /integrations/connections/{uid}/usage", ids).status_code == 200
    assert_error(call(client, "GET /subscriptions", ids), 403, "insufficient_scope")


def test_the_insufficient_scope_body_is_exactly_the_documented_one(customer, ids):
    response = limited_client(customer, S.POS_ENTITLEMENT).post(
        f"{API}/integrations/connections/{ids['connection']}/usage", {"invoices": 1}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "insufficient_scope",
            "message": "This API token does not have the scope this request needs",
            "details": {"required": "integrations:usage", "accepted": ["all", "integrations:usage"]},
        }
    }


def test_a_revoked_limited_token_is_unauthenticated_not_out_of_scope(customer):
    issued = create_api_token(user=customer.user, scopes=[S.READ])
    issued.token.revoked_at = issued.token.created_at
    issued.token.save()
    assert_error(token_client(issued.plain).post(f"{API}/keys/validate", {}, content_type="application/json"), 401)


# --- full access: the browser session, legacy tokens, the default -------------------------------


def test_the_browser_session_is_not_limited_by_scopes(customer, ids):
    browser = browser_for(customer)
    assert call(browser, "GET /pos/certificates/{uid}/entitlement", ids).status_code == 200
    assert call(browser, "POST /integrations/connections/{uid}/usage", ids).status_code == 200
    assert call(browser, "POST /keys/activate", ids).status_code == 201


def test_tokens_made_without_a_choice_have_full_access(customer):
    token = create_api_token(user=customer.user).token
    assert token.scopes == "all" and token.has_full_access


@pytest.mark.django_db(transaction=True)
def test_tokens_that_existed_before_scopes_keep_full_access():
    """The migration: a token row written before the column existed reads `all` afterwards."""
    executor = MigrationExecutor(connection)
    before = [("accounts", "0002_partner_require_two_factor")]  # the migration before scopes
    # Every app's latest migration: going back to `before` also un-applies the other apps'
    # migrations that depend on later accounts migrations, and all of them must come back.
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    user = old_apps.get_model("accounts", "User").objects.create(email="legacy@shop.example", password="!")
    old_apps.get_model("accounts", "ApiToken").objects.create(user=user, name="old", prefix="0123456789ab", digest="x")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(latest)
    assert ApiToken.objects.get(prefix="0123456789ab").scopes == "all"
    assert MigrationExecutor(connection).migration_plan(latest) == []  # the next test finds every table


# --- which scopes a token may be given -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "scopes", "problem"),
    [
        (CUSTOMER, [], "at least one"),
        (CUSTOMER, ["partner:keys"], "Not a scope for this user: partner:keys"),
        (PARTNER, ["keys:redeem"], "Not a scope for this user: keys:redeem"),
        (CUSTOMER, ["keys:everything"], "Not a scope for this user: keys:everything"),
        (CUSTOMER, ["all", "read"], "Full access already includes every scope"),
    ],
)
def test_refused_scope_choices(kind, scopes, problem, customer, reseller):
    persona = customer if kind == CUSTOMER else reseller
    with pytest.raises(InvalidInput) as refused:
        create_api_token(user=persona.user, scopes=scopes)
    assert problem in refused.value.message and refused.value.details == {"field": "scopes"}
    assert not ApiToken.objects.filter(user=persona.user).exclude(name="tests").exists()


def test_scopes_are_stored_once_each_and_audited(customer):
    issued = create_api_token(user=customer.user, scopes=["pos:entitlement", "read", "pos:entitlement"])
    assert issued.token.scopes == "pos:entitlement read"
    assert issued.token.scope_list == ["read", "pos:entitlement"]  # in the order of the Scope list
    event = Event.objects.filter(action="api_token.created").latest("id")
    assert event.details == {"scopes": ["pos:entitlement", "read"]}


# --- every route names its scopes, and the documentation says the same ---------------------------


def declared_routes() -> dict[str, set[str]]:
    """Route → the scopes its bearer authentication accepts, read from the API itself."""
    found = {}
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                [bearer] = [a for a in operation.auth_callbacks if isinstance(a, BearerToken)]
                template = "/" + (prefix + path).strip("/")
                template = re.sub(r"\{(?:\w+:)?(\w+)\}", r"{\1}", template).replace("{key_id}", "{id}")
                for method in operation.methods:
                    found[f"{method} {template.removeprefix('/api/v1')}"] = {str(s) for s in bearer.accepted}
    return found


def test_every_route_of_the_api_is_in_the_scope_table_with_its_scopes():
    expected = {route: {s.value for s in opened_by} for route, (_kind, opened_by, _status) in ROUTES.items()}
    assert declared_routes() == expected


def test_docs_list_exactly_the_routes_each_scope_opens():
    text = (Path(__file__).resolve().parent.parent / "docs" / "api-tokens.md").read_text()
    documented = {}
    for method, path, scopes in re.findall(r"^\| `(GET|POST|PATCH|DELETE) (/[^`]*)` \| ([^|]+) \|", text, re.MULTILINE):
        documented[f"{method} {path}"] = set(re.findall(r"`([a-z:]+)`", scopes)) - {"all"}
    expected = {route: {s.value for s in opened_by} for route, (_kind, opened_by, _status) in ROUTES.items()}
    assert documented == expected
    for scope in S:
        assert f"`{scope.value}`" in text, scope


# --- the tokens pages: choose scopes, see them ----------------------------------------------------


@pytest.mark.parametrize(("kind", "url"), [(CUSTOMER, "/tokens/"), (PARTNER, "/partner/tokens/")])
def test_tokens_page_offers_the_scopes_of_its_kind_with_full_access_ticked(kind, url, customer, reseller):
    html = browser_for(customer if kind == CUSTOMER else reseller).get(url).content.decode()
    offered = re.findall(r'name="scopes" value="([a-z:]+)"( checked)?', html)
    mine = ["all", "read"] + (
        ["keys:redeem", "pos:entitlement", "pos:certificates", "integrations:usage", "integrations:connections"]
        if kind == CUSTOMER
        else ["partner:keys"]
    )
    assert [value for value, _ in offered] == mine
    assert [value for value, checked in offered if checked] == ["all"]


@pytest.mark.parametrize(("kind", "url"), [(CUSTOMER, "/tokens/"), (PARTNER, "/partner/tokens/")])
def test_tokens_page_makes_a_limited_token_and_lists_its_scopes(kind, url, customer, reseller):
    persona = customer if kind == CUSTOMER else reseller
    chosen = ["pos:entitlement", "integrations:usage"] if kind == CUSTOMER else ["read"]
    browser = browser_for(persona)
    created = browser.post(url, {"name": "Till 3", "scopes": chosen})
    assert created.status_code == 200
    html = " ".join(created.content.decode().split())
    plain = re.search(r'id="new-token">(fbt_[^<]+)<', html).group(1)
    assert "scopes: " + ", ".join(sorted(chosen, key=[s.value for s in S].index)) in html  # Scope order
    token = ApiToken.objects.get(user=persona.user, name="Till 3")
    assert token.scope_set == set(chosen)
    in_order = sorted(chosen, key=[s.value for s in S].index)
    row = re.search(r"<td>Till 3</td>(.*?)</tr>", browser.get(url).content.decode(), re.DOTALL).group(1)
    assert re.findall(r'<span class="chip muted">([a-z:]+)</span>', row) == in_order
    legacy = re.search(r"<td>tests</td>(.*?)</tr>", browser.get(url).content.decode(), re.DOTALL).group(1)
    assert '<span class="chip key">all</span>' in legacy  # the persona's full token
    # and the token works within its scopes only
    api_path = "/api/v1/subscriptions" if kind == CUSTOMER else "/api/v1/partner/keys"
    expected = 403 if kind == CUSTOMER else 200
    assert token_client(plain).get(api_path).status_code == expected


@pytest.mark.parametrize(
    ("chosen", "message"),
    [([], "Choose at least one scope"), (["all", "read"], "Full access already includes every scope")],
)
def test_tokens_page_refuses_a_bad_choice_and_keeps_it_on_the_form(chosen, message, customer):
    response = browser_for(customer).post("/tokens/", {"name": "Till", "scopes": chosen})
    assert response.status_code == 422
    html = response.content.decode()
    assert message in html and 'role="alert"' in html and 'id="new-token"' not in html
    checked = re.findall(r'name="scopes" value="([a-z:]+)" checked', html)
    assert checked == chosen  # what the person ticked is still ticked
    assert 'value="Till"' in html  # and the name they typed
    assert not ApiToken.objects.filter(name="Till").exists()


def test_tokens_page_refuses_a_scope_of_the_other_kind(reseller):
    response = browser_for(reseller).post("/partner/tokens/", {"name": "Till", "scopes": ["keys:redeem"]})
    assert response.status_code == 422 and "Not a scope for this user: keys:redeem" in response.content.decode()
    assert not ApiToken.objects.filter(name="Till").exists()


def test_the_openapi_document_names_each_operations_scopes(client):
    document = client.get("/api/v1/openapi.json").json()
    named = {}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            [bearer] = [r["BearerToken"] for r in operation["security"] if "BearerToken" in r]
            route = f"{method.upper()} {path.removeprefix('/api/v1').replace('{key_id}', '{id}')}"
            named[route] = set(bearer) - {"all"}
            assert bearer[0] == "all" and "Token scopes: `all`" in operation["description"], route
    assert named == {route: {s.value for s in opened_by} for route, (_k, opened_by, _s) in ROUTES.items()}


def test_the_scopes_come_with_the_one_statement_that_authenticates_the_token(customer, ids):
    # The hot path (tests/test_hot_paths.py pins the count): no query is added for scopes.
    client = limited_client(customer, S.POS_ENTITLEMENT)
    call(client, "GET /pos/certificates/{uid}/entitlement", ids)  # last_used_at is now fresh
    with CaptureQueriesContext(connection) as captured:
        assert call(client, "GET /pos/certificates/{uid}/entitlement", ids).status_code == 200
        assert_error(call(client, "GET /subscriptions", ids), 403, "insufficient_scope")
    token_reads = [q["sql"] for q in captured.captured_queries if "accounts_apitoken" in q["sql"]]
    assert len(token_reads) == 2, token_reads  # one per request
    assert all("scopes" in sql for sql in token_reads)
    refused = captured.captured_queries[len(captured.captured_queries) - 1]["sql"]
    assert "accounts_apitoken" in refused  # the refused request ran nothing after authentication
