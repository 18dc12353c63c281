"""The tenant matrix (issue 10, item 10): every route and page that takes an id, asked for by each
kind of requester — the owner, another tenant of the same kind, a tenant of the other kind
(partner vs customer), nobody, and staff — answers exactly as designed:

- owner: 200 (or 201/302 for an action);
- another tenant: 404 with exactly the body of an id that does not exist (SPEC 1: never 403, no
  oracle), and nothing changes;
- the other kind: 403 (`forbidden` in the API, the "this portal is for …" page);
- anonymous: 401 `unauthenticated` (API) or a redirect to the login page;
- staff: 403 on the tenants' API and portal pages (staff are neither customers nor partners and
  work in the admin); the admin is the reverse: staff only, everyone else to the admin login.

The URL patterns are read from Django's resolver: a pattern with an id parameter that is not in
this matrix fails `test_every_url_with_an_id_is_in_the_matrix`, so a new route cannot escape it.
"""

import re
from dataclasses import dataclass, field

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from fiscobridge.accounts.models import ApiToken
from fiscobridge.audit.models import Event
from fiscobridge.integrations.models import Connection
from fiscobridge.keys.issuance import issue_keys
from fiscobridge.keys.models import ActivationKey
from fiscobridge.partners.large_batches import start_large_issue
from fiscobridge.partners.models import IssueJob
from fiscobridge.pos.models import Certificate
from fiscobridge.webhooks.models import Delivery, Endpoint
from fiscobridge.webhooks.services import create_endpoint
from tests.factories import PASSWORD, browser_for, owned_objects, post_json, run_tasks

OWNER, OTHER_TENANT, OTHER_KIND, ANONYMOUS, STAFF = "owner", "other tenant", "other kind", "anonymous", "staff"
REQUESTERS = [OTHER_TENANT, OTHER_KIND, ANONYMOUS, STAFF, OWNER]  # the owner last: its action may change the object
MISSING = {
    "certificate": "CZZZZZZZZZZ",
    "connection": "KZZZZZZZZZZ",
    "key_id": 2**40,
    "token_id": 2**40,
    "job_id": 2**40,
    "endpoint_id": 2**40,
    "delivery_id": 2**40,
}


@dataclass
class Row:
    """One URL with an id: who owns it (`customer` or `partner`), how to call it, and the owner's answer."""

    kind: str
    method: str
    path: str  # with {id}: filled with the owner's id, or a missing one
    target: str  # which id: certificate, connection, key_id, token_id, job_id
    owner_status: int
    api: bool = field(init=False)
    body: dict | None = None

    def __post_init__(self):
        self.api = self.path.startswith("/api/")


# Route (as Django's resolver writes it) → how it is asked for. Two pages take the id in the body
# rather than the URL; they are in the matrix too (`BODY_ID_PAGES`).
MATRIX = {
    "api/v1/pos/certificates/<uid>/revoke": Row(
        "customer", "POST", "/api/v1/pos/certificates/{id}/revoke", "certificate", 200
    ),
    "api/v1/pos/certificates/<uid>/entitlement": Row(
        "customer", "GET", "/api/v1/pos/certificates/{id}/entitlement", "certificate", 200
    ),
    "api/v1/pos/certificates/<uid>/lease": Row(
        "customer", "POST", "/api/v1/pos/certificates/{id}/lease", "certificate", 200
    ),
    "api/v1/integrations/connections/<uid>/remove": Row(
        "customer", "POST", "/api/v1/integrations/connections/{id}/remove", "connection", 200
    ),
    "api/v1/integrations/connections/<uid>/usage": Row(
        "customer", "POST", "/api/v1/integrations/connections/{id}/usage", "connection", 200, body={"invoices": 2}
    ),
    "api/v1/partner/keys/<int:key_id>/revoke": Row(
        "partner", "POST", "/api/v1/partner/keys/{id}/revoke", "key_id", 200, body={"reason": "lost"}
    ),
    "partner/keys/<int:key_id>/": Row("partner", "GET", "/partner/keys/{id}/", "key_id", 200),
    "partner/keys/<int:key_id>/revoke/": Row(
        "partner", "POST", "/partner/keys/{id}/revoke/", "key_id", 302, body={"reason": "lost"}
    ),
    "partner/tokens/<int:token_id>/revoke/": Row("partner", "POST", "/partner/tokens/{id}/revoke/", "token_id", 302),
    "partner/issue/jobs/<int:job_id>/": Row("partner", "GET", "/partner/issue/jobs/{id}/", "job_id", 200),
    "partner/issue/jobs/<int:job_id>/codes.csv": Row(
        "partner", "POST", "/partner/issue/jobs/{id}/codes.csv", "job_id", 200
    ),
    "tokens/<int:token_id>/revoke/": Row("customer", "POST", "/tokens/{id}/revoke/", "token_id", 302),
    # Webhooks (one row per route: GET stands for PATCH and DELETE of the same path, which
    # tests/test_webhooks.py asks for as another partner too).
    "api/v1/partner/webhooks/<int:endpoint_id>": Row(
        "partner", "GET", "/api/v1/partner/webhooks/{id}", "endpoint_id", 200
    ),
    "api/v1/partner/webhooks/<int:endpoint_id>/deliveries": Row(
        "partner", "GET", "/api/v1/partner/webhooks/{id}/deliveries", "endpoint_id", 200
    ),
    "api/v1/partner/webhooks/deliveries/<int:delivery_id>/resend": Row(
        "partner", "POST", "/api/v1/partner/webhooks/deliveries/{id}/resend", "delivery_id", 202
    ),
    "partner/webhooks/<int:endpoint_id>/": Row("partner", "GET", "/partner/webhooks/{id}/", "endpoint_id", 200),
    "partner/webhooks/<int:endpoint_id>/toggle/": Row(
        "partner", "POST", "/partner/webhooks/{id}/toggle/", "endpoint_id", 302
    ),
    "partner/webhooks/<int:endpoint_id>/delete/": Row(
        "partner", "POST", "/partner/webhooks/{id}/delete/", "endpoint_id", 302
    ),
    "partner/webhooks/deliveries/<int:delivery_id>/resend/": Row(
        "partner", "POST", "/partner/webhooks/deliveries/{id}/resend/", "delivery_id", 302
    ),
}
BODY_ID_PAGES = {
    "pos/certificates/revoke/": Row("customer", "POST", "/pos/certificates/revoke/", "certificate", 200),
    "integrations/connections/remove/": Row("customer", "POST", "/integrations/connections/remove/", "connection", 200),
}
# Not a tenant's object: a password-reset link names a user and is useless without its token.
PASSWORD_RESET = "reset/<uidb64>/<token>/"
# Admin pages named by the admin site for every registered model, and the others it has.
ADMIN_MODEL_SUFFIXES = ("<path:object_id>/", "<path:object_id>/change/", "<path:object_id>/delete/",
                        "<path:object_id>/history/")  # fmt: skip
ADMIN_OTHERS = {"admin/r/<path:content_type_id>/<path:object_id>/", "admin/accounts/user/<id>/password/"}

ID_PARAMETER = re.compile(r"<(?:\w+:)?(\w*(?:id|pk)|uid|uidb64)>")


def url_patterns(patterns=None, prefix=""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from url_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def admin_model_routes() -> dict[str, type]:
    routes = {}
    for model in admin.site._registry:
        base = f"admin/{model._meta.app_label}/{model._meta.model_name}/"
        for suffix in ADMIN_MODEL_SUFFIXES:
            routes[base + suffix] = model
    return routes


def test_every_url_with_an_id_is_in_the_matrix():
    with_ids = {route for route in url_patterns() if ID_PARAMETER.search(route)}
    covered = set(MATRIX) | {PASSWORD_RESET} | set(admin_model_routes()) | ADMIN_OTHERS
    assert with_ids - covered == set(), "routes with an id that the tenant matrix does not cover"
    assert covered - with_ids == set(), "matrix rows for routes that no longer exist"
    for route in BODY_ID_PAGES:  # their id is in the body: they exist without an id parameter
        assert route in set(url_patterns()), route


# --- the tenants' routes and pages ------------------------------------------------------------------


@pytest.fixture
def world(customer, outsider, reseller, other_reseller, staff, issue):
    mine = owned_objects(customer, reseller, issue)
    theirs = owned_objects(outsider, other_reseller, lambda **kw: issue(partner=other_reseller.partner, **kw))
    mine.update(webhook_objects(reseller))
    theirs.update(webhook_objects(other_reseller))
    return {
        "customer": {
            "owner": customer,
            "other tenant": outsider,
            "other kind": reseller,
            "ids": mine,
            "theirs": theirs,
        },
        "partner": {
            "owner": reseller,
            "other tenant": other_reseller,
            "other kind": customer,
            "ids": mine,
            "theirs": theirs,
        },  # fmt: skip
        "staff": staff,
    }


def webhook_objects(partner_persona) -> dict:
    """An endpoint of the partner and one delivery to it (a batch issued while it listens)."""
    created = create_endpoint(
        partner=partner_persona.partner,
        actor=partner_persona.user,
        url="https://hooks.example.com/fb",
        events=["batch.issued"],
    )
    issue_keys(
        partner=partner_persona.partner, actor=partner_persona.user, product="pos", seats=1, months=1, quantity=1
    )
    return {"endpoint_id": created.endpoint.pk, "delivery_id": created.endpoint.deliveries.get().pk}


def id_of(row: Row, persona, objects: dict):
    if row.target == "token_id":
        return ApiToken.objects.filter(user=persona.user).latest("id").pk
    if row.target == "job_id":  # a large batch's job with its codes waiting for their download
        job = IssueJob.objects.filter(partner=persona.partner, status="ready").first()
        if job is None:
            job = start_large_issue(
                partner=persona.partner, actor=persona.user, product="pos", seats=1, months=1, quantity=2
            )
            run_tasks()
        return job.pk
    return objects[row.target]


def client_for(row: Row, who: str, world) -> Client:
    side = world[row.kind]
    if who == ANONYMOUS:
        return Client()
    persona = world["staff"] if who == STAFF else side[who]
    return persona.client if row.api else browser_for(persona)


def ask(row: Row, client: Client, object_id):
    path = row.path.replace("{id}", str(object_id)) if "{id}" in row.path else row.path
    if row.method == "GET":
        return client.get(path)
    body = dict(row.body or {})
    if "{id}" not in row.path:
        body["uid"] = object_id
    if row.api:
        return post_json(client, path, body)
    return client.post(path, body)


def snapshot() -> tuple:
    """What an action could change: the state of every object behind an id, and the audit trail."""
    return (
        list(Certificate.objects.order_by("pk").values_list("uid", "status")),
        list(Connection.objects.order_by("pk").values_list("uid", "status")),
        list(ActivationKey.objects.order_by("pk").values_list("pk", "status")),
        list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        list(IssueJob.objects.order_by("pk").values_list("pk", "status", "downloaded_at")),
        list(Endpoint.objects.order_by("pk").values_list("pk", "enabled", "url")),
        list(Delivery.objects.order_by("pk").values_list("pk", "status", "next_attempt_at")),
        Event.objects.count(),
    )


def same_page(a: bytes, b: bytes) -> bool:
    """Equal but for the CSRF token, which Django masks afresh in every response."""
    token = re.compile(rb'("X-CSRFToken": "|name="csrfmiddlewaretoken" value=")[^"]+')
    return token.sub(rb"\1", a) == token.sub(rb"\1", b)


def expect(row: Row, who: str, response, missing_response):
    status = response.status_code
    if who == OWNER:
        assert status == row.owner_status, (row.path, who, status, response.content[:300])
        if row.owner_status == 302:
            assert not response["Location"].startswith("/login"), response["Location"]
        return
    if who == OTHER_TENANT:
        assert status == 404, (row.path, who, status)
        # no oracle: exactly the answer for an id that does not exist
        assert same_page(response.content, missing_response.content), (row.path, response.content[:200])
        if row.api:
            assert response.json()["error"]["code"] == "not_found"
        return
    if who == ANONYMOUS:
        if row.api:
            assert status == 401 and response.json()["error"]["code"] == "unauthenticated", (row.path, status)
        else:
            assert status == 302 and response["Location"].startswith("/login/?next="), (row.path, status)
        return
    # the other kind of tenant, and staff: this is not their portal (or API)
    assert status == 403, (row.path, who, status, response.content[:200])
    if row.api:
        assert response.json()["error"]["code"] == "forbidden"
    else:
        portal = "This is the Client Portal" if row.kind == "customer" else "This is the Partner Portal"
        assert portal in response.content.decode(), (row.path, who)


ALL_ROWS = {**MATRIX, **BODY_ID_PAGES}


@pytest.mark.parametrize("route", list(ALL_ROWS))
def test_tenant_matrix(route, world):
    row = ALL_ROWS[route]
    side = world[row.kind]
    owners_id = id_of(row, side["owner"], side["ids"])  # before any snapshot: it may create the object
    for who in REQUESTERS:
        client = client_for(row, who, world)
        if who == OTHER_TENANT:
            # the owner's object, asked for by the other tenant; then an id nobody has
            before = snapshot()
            response = ask(row, client, owners_id)
            assert snapshot() == before, (route, who)
            missing = ask(row, client, MISSING[row.target])
            expect(row, who, response, missing)
            continue
        before = snapshot()
        response = ask(row, client, owners_id)
        expect(row, who, response, None)
        if who != OWNER:
            assert snapshot() == before, (route, who)


def test_a_teammate_cannot_revoke_another_users_token(customer, teammate):
    # Tokens belong to a user, not to the account: the same tenant's other user gets the missing-id 404.
    token = ApiToken.objects.filter(user=customer.user).latest("id")
    browser = browser_for(teammate)
    theirs, missing = browser.post(f"/tokens/{token.pk}/revoke/"), browser.post(f"/tokens/{2**40}/revoke/")
    assert theirs.status_code == missing.status_code == 404 and same_page(theirs.content, missing.content)
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize("who", [OWNER, OTHER_TENANT, OTHER_KIND, ANONYMOUS, STAFF])
def test_a_password_reset_link_without_its_token_is_refused_for_everyone(who, customer, outsider, reseller, staff):
    link = f"/reset/{urlsafe_base64_encode(force_bytes(customer.user.pk))}/set-password-xyz/"
    persona = {OWNER: customer, OTHER_TENANT: outsider, OTHER_KIND: reseller, STAFF: staff}.get(who)
    client = Client() if persona is None else browser_for(persona)
    response = client.get(link, follow=True)
    assert response.status_code == 200 and "This link has expired" in response.content.decode()
    customer.user.refresh_from_db()
    assert customer.user.check_password(PASSWORD)


# --- the staff admin ---------------------------------------------------------------------------------


def _one_of_each(customer, reseller, issue):
    """At least one row of every model the admin shows, made the way the product makes them."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    from fiscobridge.billing.models import CheckoutSession, StripeCustomer, StripeEvent

    ids = owned_objects(customer, reseller, issue)
    usage = f"/api/v1/integrations/connections/{ids['connection']}/usage"
    assert post_json(customer.client, usage, {"invoices": 1}).status_code == 200
    run_tasks()  # the activation e-mails: outbound e-mail rows
    Group.objects.create(name="Support")
    seen = {"username": "x@example.com", "ip_address": "10.0.0.1", "user_agent": "t", "path_info": "/login/"}
    AccessAttempt.objects.create(**seen, failures_since_start=1, get_data="", post_data="", http_accept="")
    AccessLog.objects.create(**seen, http_accept="")
    AccessFailureLog.objects.create(**seen, http_accept="", locked_out=False)
    StripeCustomer.objects.create(account=customer.account, customer_id="cus_matrix")
    CheckoutSession.objects.create(
        session_id="cs_matrix", account=customer.account, product="pos", seats=1, interval="month", price_id="p"
    )
    StripeEvent.objects.create(event_id="evt_matrix", type="invoice.paid")
    webhook_objects(reseller)  # an endpoint and a delivery


def _staff_status(model_admin, route: str, request) -> int:
    obj = model_admin.model._default_manager.order_by("pk").first()
    if route.endswith("<path:object_id>/"):
        return 302  # the admin's old-style URL: a redirect to the change page
    if route.endswith("delete/"):
        return 200 if model_admin.has_delete_permission(request, obj) else 403
    return 200 if model_admin.has_view_or_change_permission(request, obj) else 403


def test_admin_pages_with_an_id_are_staff_only(customer, outsider, reseller, staff, issue, rf):
    _one_of_each(customer, reseller, issue)
    staff_browser = browser_for(staff)
    request = rf.get("/admin/")
    request.user = staff.user
    checked = 0
    for route, model in admin_model_routes().items():
        obj = model._default_manager.order_by("pk").first()
        assert obj is not None, f"no {model.__name__} row to open: add one to _one_of_each"
        path = "/" + route.replace("<path:object_id>", str(obj.pk))
        for who, client in ((ANONYMOUS, Client()), (OWNER, browser_for(customer)), (OTHER_KIND, browser_for(reseller))):
            response = client.get(path)
            assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), (path, who)
        expected = _staff_status(admin.site._registry[model], route, request)
        response = staff_browser.get(path)
        assert response.status_code == expected, (path, response.status_code, expected)
        checked += 1
    assert checked == len(admin_model_routes())


def test_the_other_admin_pages_with_an_id_are_staff_only(customer, reseller, staff):
    from django.contrib.contenttypes.models import ContentType

    from fiscobridge.accounts.models import Account

    paths = {
        f"/admin/r/{ContentType.objects.get_for_model(Account).pk}/{customer.account.pk}/": 404,  # no public URL
        f"/admin/accounts/user/{customer.user.pk}/password/": 200,
    }
    assert len(paths) == len(ADMIN_OTHERS)
    for path, staff_status in paths.items():
        for client in (Client(), browser_for(customer), browser_for(reseller)):
            response = client.get(path)
            assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), path
        assert browser_for(staff).get(path).status_code == staff_status, path


# --- ids in the query string: a filter by another tenant's batch finds nothing ------------------------

# A filter is not a lookup: another partner's batch id is not an error (that would tell it exists),
# it matches none of the caller's keys — the same answer as a batch id nobody has.
BATCH_FILTERS = {
    "api": "/api/v1/partner/keys?batch={id}",
    "page": "/partner/keys/?batch={id}",
    "table": "/partner/keys/table/?batch={id}",
    "export": "/partner/keys/export.csv?batch={id}",
}


def _body(response) -> str:
    """The page or CSV as text; for the API, the listed key ids (a key's id is its identity there)."""
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    if response["Content-Type"].startswith("application/json") and "items" in response.json():
        return " ".join(f"<{item['id']}>" for item in response.json()["items"])
    return response.content.decode()


@pytest.mark.parametrize("where", list(BATCH_FILTERS))
def test_a_batch_filter_only_ever_finds_the_callers_own_keys(where, customer, reseller, other_reseller, staff, issue):
    ids = owned_objects(customer, reseller, issue)
    batch_id = ActivationKey.objects.get(pk=ids["key_id"]).batch_id
    own_keys = ActivationKey.objects.filter(batch_id=batch_id)
    # what identifies a key on a page or in the CSV (its hint), or in the API (its id)
    own_hints = (
        [f"<{pk}>" for pk in own_keys.values_list("pk", flat=True)]
        if where == "api"
        else [f"••••-{group}" for group in own_keys.values_list("last_group", flat=True)]
    )
    path = BATCH_FILTERS[where].replace("{id}", str(batch_id))
    missing = BATCH_FILTERS[where].replace("{id}", str(2**40))
    api = where == "api"

    def client(persona):
        return Client() if persona is None else (persona.client if api else browser_for(persona))

    owner = client(reseller).get(path)
    shown = _body(owner)  # once: a streamed CSV can be read only once
    assert owner.status_code == 200 and all(h in shown for h in own_hints), (where, own_hints)
    other = client(other_reseller).get(path)
    shown = _body(other)
    assert other.status_code == 200 and not any(h in shown for h in own_hints), where
    if api:
        assert other.json() == client(other_reseller).get(missing).json() == {"items": [], "next_cursor": None}
    for persona in (customer, staff):
        refused = client(persona).get(path)
        shown = _body(refused)
        assert refused.status_code == 403 and not any(h in shown for h in own_hints), (where, persona)
    anonymous = client(None).get(path)
    assert anonymous.status_code == (401 if api else 302), where
