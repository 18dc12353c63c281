"""No page shows template syntax (issue 14).

Django's `{# … #}`, `{{ … }}` and `{% … %}` end on the line they start on: a comment or tag that
spans lines is not one, and the page prints it. This guard renders every page of both portals
(every named URL outside the admin and the API, taken from the URL resolver, so a new page is
visited without editing this file), the htmx answers behind their forms and dialogs, the login,
password-reset, 404 and 500 pages and the e-mails they send, for each persona, and fails when
the text a person sees holds `{#`, `{%` or `{{`. It also fails when a template under
fiscobridge/templates was never rendered, so a new fragment needs a visit here.
`make lint` (djlint's rule D058) finds the same mistakes in the sources, before anything runs.
"""

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.test.signals import template_rendered
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from fiscobridge.keys.issuance import issue_keys
from fiscobridge.partners.models import IssueJob
from fiscobridge.webhooks.models import Delivery, Endpoint
from tests.factories import PASSWORD, PFX_PASSWORD, browser_for, new_pfx, run_tasks
from tests.stripe_fake import post_event

ROOT = Path(__file__).resolve().parent.parent
SYNTAX = re.compile(r"{#|{%|{{")
HTMX = {"HTTP_HX_REQUEST": "true"}
SKIPPED_PREFIXES = ("admin/", "api/")  # Django's admin and the API's own docs: not our page templates


# --- what a person sees ------------------------------------------------------------------------


class VisibleText(HTMLParser):
    """The text of a page as people meet it: text nodes (scripts and styles left out) and the
    attributes that are shown or read out."""

    SHOWN_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}
    HIDDEN_ELEMENTS = {"script", "style", "template"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN_ELEMENTS:
            self._hidden += 1
        self.parts += [value for name, value in attrs if name in self.SHOWN_ATTRIBUTES and value]
        if tag == "input" and dict(attrs).get("type") in ("submit", "button", "reset"):
            self.parts.append(dict(attrs).get("value") or "")

    def handle_endtag(self, tag):
        if tag in self.HIDDEN_ELEMENTS and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    parser.close()
    return "\n".join(parser.parts)


def syntax_in(text: str) -> list[str]:
    """Each `{#`, `{%` or `{{` in the text, with a little of what surrounds it."""
    return [" ".join(text[max(0, m.start() - 50) : m.end() + 50].split()) for m in SYNTAX.finditer(text)]


def body_of(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


class Crawl:
    """Every answer seen, what a person would read in it, and every template rendered."""

    def __init__(self):
        self.problems: list[str] = []
        self.seen = 0
        self.rendered: set[str] = set()

    def on_render(self, sender, template, context, **kwargs):
        origin = getattr(template, "origin", None)
        if origin is not None and origin.template_name:
            self.rendered.add(f"{origin.name}|{origin.template_name}")

    def check(self, label: str, response) -> None:
        self.seen += 1
        content_type = response.get("Content-Type", "")
        if content_type.startswith("application/json") or response.status_code in (204, 301, 302, 303, 405):
            return
        body = body_of(response)
        text = visible_text(body) if content_type.startswith("text/html") else body
        self.problems += [f"{label} [{response.status_code}]: …{snippet}…" for snippet in syntax_in(text)]

    def check_text(self, label: str, text: str) -> None:
        self.seen += 1
        self.problems += [f"{label}: …{snippet}…" for snippet in syntax_in(text)]


# --- the pages, from the URL resolver -----------------------------------------------------------


def named_routes() -> list[tuple[str, str]]:
    """(name, route) of every named URL outside the admin and the API."""

    def walk(patterns, prefix: str, namespace: str):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if route.startswith(SKIPPED_PREFIXES):
                continue
            if isinstance(entry, URLResolver):
                inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                yield from walk(entry.url_patterns, route, inner)
            elif isinstance(entry, URLPattern) and entry.name:
                yield f"{namespace}{entry.name}", route

    return sorted(set(walk(get_resolver().url_patterns, "", "")))


def page_urls(params: dict) -> list[str]:
    urls = []
    for name, route in named_routes():
        needed = re.findall(r"<(?:\w+:)?(\w+)>", route)
        missing = [p for p in needed if p not in params]
        assert not missing, f"the guard needs a value for {missing} to visit {name} ({route}): add it to `params`"
        urls.append(reverse(name, kwargs={p: params[p] for p in needed}))
    return urls


# --- objects for the pages to show -------------------------------------------------------------


def nonce_of(client: Client) -> str:
    page = client.get("/partner/issue/").content.decode()
    return re.search(r'name="nonce" value="([^"]+)"', page).group(1)


def start_checkout(client: Client, **choice) -> str:
    """Purchase Seats as a plain form: the answer sends the browser to Stripe; returns the session id."""
    response = client.post(
        "/billing/checkout/", {"product": "pos", "tier": "", "seats": 3, "interval": "month", **choice}
    )
    assert response.status_code == 303, response.content[:300]
    return response["Location"].rstrip("/").rsplit("/", 1)[1]


# --- the crawl --------------------------------------------------------------------------------------


def crawl(*, customer, outsider, reseller, other_reseller, staff, stripe_on, mailoutbox) -> Crawl:
    seen = Crawl()
    template_rendered.connect(seen.on_render)
    try:
        _crawl(
            seen,
            customer=customer,
            outsider=outsider,
            reseller=reseller,
            other_reseller=other_reseller,
            staff=staff,
            stripe_on=stripe_on,
        )
    finally:
        template_rendered.disconnect(seen.on_render)
    for mail in mailoutbox:
        seen.check_text(f"e-mail “{mail.subject}”", mail.subject + "\n" + mail.body)
    return seen


def _crawl(seen: Crawl, *, customer, outsider, reseller, other_reseller, staff, stripe_on) -> None:
    shop, partner, admin = browser_for(customer), browser_for(reseller), browser_for(staff)

    def post(label, client, url, data=None, htmx=False, follow=False):
        response = client.post(url, data or {}, follow=follow, **(HTMX if htmx else {}))
        seen.check(label, response)
        return response

    def get(label, client, url, htmx=False):
        response = client.get(url, follow=True, **(HTMX if htmx else {}))
        seen.check(label, response)
        return response

    def issue(**package) -> tuple[int, str]:
        """One key (of `reseller` unless told) through the issuing service; its id and its code."""
        package = {
            "partner": reseller.partner,
            "actor": reseller.user,
            "product": "pos",
            "tier": "",
            "seats": 2,
            "months": 12,
            "quantity": 1,
            **package,
        }
        [key] = issue_keys(**package).keys
        return key.id, key.code

    # Keys from the partner, activated in the Client Portal (the Activate Key dialog's answers).
    (activated_id, pos_code), (_, renewal_code), (_, growth_code), (voided_id, voided_code) = (
        issue(),
        issue(seats=1),
        issue(product="int", tier="growth"),
        issue(),
    )
    revoked_id, _ = issue(reference="Order 7781", redeem_by=datetime.now(UTC) + timedelta(days=30))
    available_id, _ = issue()
    post("validate, bad key", shop, "/keys/validate/", {"product": "pos", "key": "POS-NOPE"}, htmx=True)
    post("validate POS key", shop, "/keys/validate/", {"product": "pos", "key": pos_code}, htmx=True)
    post("activate POS key", shop, "/keys/activate/", {"product": "pos", "key": pos_code}, htmx=True)
    review = post("validate renewal", shop, "/keys/validate/", {"product": "pos", "key": renewal_code}, htmx=True)
    renew = re.search(r'name="renew" value="(\d+)"', body_of(review)).group(1)
    post(
        "activate as renewal",
        shop,
        "/keys/activate/",
        {"product": "pos", "key": renewal_code, "renew": renew},
        htmx=True,
    )
    post("activate INT key", shop, "/keys/activate/", {"product": "int", "key": growth_code}, htmx=True)
    post("activate, already used", shop, "/keys/activate/", {"product": "int", "key": growth_code}, htmx=True)
    post("activate key to void", shop, "/keys/activate/", {"product": "pos", "key": voided_code}, htmx=True)

    # Staff void that key in the admin (an ended subscription for the customer's pages); the
    # confirmation step is our template.
    void = {"action": "void_selected", "_selected_action": [voided_id]}
    get("admin index", admin, "/admin/")
    post("admin action confirmation", admin, "/admin/keys/activationkey/", void)
    post(
        "admin action done",
        admin,
        "/admin/keys/activationkey/",
        {**void, "confirm": "yes", "reason": "Chargeback"},
        follow=True,
    )

    # POS Manager: upload and revoke certificates.
    upload = "/pos/certificates/upload/"
    post(
        "upload, not a certificate",
        shop,
        upload,
        {"file": SimpleUploadedFile("x.pfx", b"not pkcs12"), "password": "x"},
        htmx=True,
    )
    post("upload", shop, upload, {"file": SimpleUploadedFile("a.pfx", new_pfx()), "password": PFX_PASSWORD}, htmx=True)
    uploaded = post(
        "upload another",
        shop,
        upload,
        {"file": SimpleUploadedFile("b.pfx", new_pfx()), "password": PFX_PASSWORD},
        htmx=True,
    )
    [(certificate, _), _] = rows_to_confirm(body_of(uploaded))
    post("revoke certificate", shop, "/pos/certificates/revoke/", {"uid": certificate}, htmx=True)
    post("revoke it again", shop, "/pos/certificates/revoke/", {"uid": certificate}, htmx=True)

    # Integrations: create and remove connections.
    create = "/integrations/connections/"
    post("create connection", shop, create, {"type": "zoho_books", "tier": "growth", "name": "Zoho"}, htmx=True)
    created = post("create another", shop, create, {"type": "custom", "tier": "growth", "name": "Old"}, htmx=True)
    post("create, no free seat", shop, create, {"type": "xero", "tier": "growth", "name": "More"}, htmx=True)
    post("create, no trial with a paid plan", shop, create, {"type": "xero", "tier": "trial", "name": "Try"}, htmx=True)
    old = next(uid for uid, label in rows_to_confirm(body_of(created)) if label == "Old")
    post("remove connection", shop, "/integrations/connections/remove/", {"uid": old}, htmx=True)

    # Buying online (the local Stripe): one paid checkout, one still waiting, a seat change, invoices.
    paid = start_checkout(shop, seats=3)
    assert post_event(Client(), stripe_on.complete_checkout(paid)).status_code == 200
    waiting = start_checkout(shop, product="int", tier="growth", seats=2)
    buy_page = get("Buy POS License with a Stripe row", shop, "/pos/buy/")
    stripe_row = re.search(r'id="row-seats-(\d+)"', body_of(buy_page)).group(1)
    get("checkout success, paid", shop, f"/billing/checkout/success/?session_id={paid}")
    get("checkout success, waiting", shop, f"/billing/checkout/success/?session_id={waiting}")
    get("checkout status, waiting", shop, f"/billing/checkout/status/?session_id={waiting}", htmx=True)
    get("checkout status, paid", shop, f"/billing/checkout/status/?session_id={paid}", htmx=True)
    get("checkout cancelled (Integrations)", shop, "/billing/checkout/cancelled/?product=int")
    bad_purchase = {"product": "pos", "seats": 0, "interval": "month"}
    post("purchase, bad seats (htmx)", shop, "/billing/checkout/", bad_purchase, htmx=True)
    post("purchase, bad seats (plain form)", shop, "/billing/checkout/", bad_purchase)
    post("change seats", shop, "/billing/seats/", {"subscription": stripe_row, "seats": 4}, htmx=True)
    post("change seats, too few", shop, "/billing/seats/", {"subscription": stripe_row, "seats": 0}, htmx=True)
    post("Manage in Stripe", shop, "/billing/portal/")
    post("Manage in Stripe, nothing to manage", browser_for(outsider), "/billing/portal/")
    get("invoices", shop, "/billing/invoices/", htmx=True)
    stripe_on.fail_next("GET", r"/v1/invoices")
    get("invoices, Stripe down", shop, "/billing/invoices/", htmx=True)

    # Partner Portal: the answers of the issue form, revoking, looking up.
    post(
        "issue, invalid",
        partner,
        "/partner/issue/",
        {"product": "int", "tier": "", "seats": 0, "months": 12, "quantity": 1, "nonce": nonce_of(partner)},
        htmx=True,
    )
    nonce = nonce_of(partner)
    post(
        "issue and e-mail",
        partner,
        "/partner/issue/",
        {
            "product": "int",
            "tier": "scale",
            "seats": 2,
            "months": 6,
            "quantity": 1,
            "reference": "Order 12",
            "redeem_by": (datetime.now(UTC) + timedelta(days=9)).date().isoformat(),
            "email": "buyer@shop.example",
            "nonce": nonce,
        },
        htmx=True,
    )
    post("issue, sent twice", partner, "/partner/issue/", {"quantity": 1, "nonce": nonce}, htmx=True)
    post(
        "issue, plain form",
        partner,
        "/partner/issue/",
        {"product": "pos", "seats": 1, "months": 12, "quantity": 3, "nonce": nonce_of(partner)},
    )
    # A large batch (more than KEY_ISSUE_DIRECT_MAX keys): queued, ready, downloaded, and again.
    post(
        "issue a large batch",
        partner,
        "/partner/issue/",
        {"product": "pos", "seats": 1, "months": 12, "quantity": 1001, "nonce": nonce_of(partner)},
        htmx=True,
    )
    job = IssueJob.objects.filter(partner=reseller.partner).latest("id")
    get("large batch, queued", partner, f"/partner/issue/jobs/{job.pk}/", htmx=True)
    run_tasks()
    get("large batch, ready", partner, f"/partner/issue/jobs/{job.pk}/")
    post("large batch, download", partner, f"/partner/issue/jobs/{job.pk}/codes.csv", {})
    post("large batch, downloaded again", partner, f"/partner/issue/jobs/{job.pk}/codes.csv", {})
    get("large batch, downloaded", partner, f"/partner/issue/jobs/{job.pk}/", htmx=True)
    post("revoke an activated key", partner, f"/partner/keys/{activated_id}/revoke/", {"reason": "Oops"}, htmx=True)
    post("revoke a key", partner, f"/partner/keys/{revoked_id}/revoke/", {"reason": "Order cancelled"}, follow=True)
    _, elsewhere = issue(partner=other_reseller.partner, actor=other_reseller.user)
    post("lookup, bad format", partner, "/partner/lookup/", {"key": "POS-12"})
    post("lookup, not ours", partner, "/partner/lookup/", {"key": elsewhere})
    post("lookup", partner, "/partner/lookup/", {"key": pos_code}, follow=True)
    get("keys, filtered", partner, "/partner/keys/?status=revoked&product=pos&q=zzzz")
    get("keys table, filtered", partner, "/partner/keys/table/?status=activated", htmx=True)
    get("keys table, nothing matches", partner, "/partner/keys/table/?q=none-such", htmx=True)
    get("keys table, bad cursor", partner, "/partner/keys/table/?cursor=garbage", htmx=True)

    # API tokens in both portals: create (shown once), revoke (a message on the next page); a
    # limited token (its scope chips) and a refused choice of scopes (the form's error).
    for label, client, tokens in (("Client Portal", shop, "/tokens/"), ("Partner Portal", partner, "/partner/tokens/")):
        post(f"{label}: create a read-only token", client, tokens, {"name": "Reader", "scopes": "read"})
        post(f"{label}: refused scopes", client, tokens, {"name": "Both", "scopes": ["all", "read"]})
        created = post(f"{label}: create token", client, tokens, {"name": "Guard script", "scopes": "all"})
        revoke = re.findall(r'action="([^"]+/revoke/)"', body_of(created))[0]
        post(f"{label}: revoke token", client, revoke, follow=True)

    # Webhooks: add an endpoint (its secret shown once), a refused URL, a delivery (a batch issued
    # while it listens; one failed for good, one retried later) and Resend as htmx does it.
    post(
        "webhooks: add",
        partner,
        "/partner/webhooks/",
        {"url": "https://hooks.example.com/fb", "events": ["batch.issued", "key.revoked"], "description": "CRM"},
    )
    post("webhooks: refused URL", partner, "/partner/webhooks/", {"url": "http://10.0.0.1/", "events": "batch.issued"})
    endpoint = Endpoint.objects.get(partner=reseller.partner)
    issue()
    issue()
    failed, delivery = endpoint.deliveries.order_by("pk")
    Delivery.objects.filter(pk=failed.pk).update(status="failed", attempts=8, response_code=500, last_error="HTTP 500")
    Endpoint.objects.filter(pk=endpoint.pk).update(status="failing", failing_since=datetime.now(UTC))
    post("webhooks: resend", partner, f"/partner/webhooks/deliveries/{delivery.pk}/resend/", htmx=True)
    post("webhooks: resend, plain form", partner, f"/partner/webhooks/deliveries/{failed.pk}/resend/", follow=True)

    # Every page of both portals and the auth pages, for each persona, as a page and as htmx.
    token = re.search(r'action="/tokens/(\d+)/revoke/"', body_of(shop.get("/tokens/"))).group(1)
    params = {
        "token_id": token,
        "key_id": activated_id,
        "job_id": job.pk,
        "endpoint_id": endpoint.pk,
        "delivery_id": delivery.pk,
        "uidb64": urlsafe_base64_encode(force_bytes(customer.user.pk)),
        "token": default_token_generator.make_token(customer.user),
    }
    more = ["/no-such-page/", "/pos/?upgrade=1", "/integrations/?upgrade=1"] + [
        f"/partner/keys/{key_id}/" for key_id in (revoked_id, available_id, voided_id)
    ]
    personas = {"anonymous": Client(), "customer": shop, "reseller": partner, "staff": admin}
    for url in page_urls(params) + more:
        for who, client in personas.items():
            get(f"{who} GET {url}", client, url)
            get(f"{who} htmx GET {url}", client, url, htmx=True)

    # Logging in and resetting a password, as the anonymous visitor does.
    visitor = Client()
    post("login, wrong password", visitor, "/login/", {"username": customer.user.email, "password": "wrong"})
    post("password reset", visitor, "/password_reset/", {"email": customer.user.email}, follow=True)
    run_tasks()  # the worker renders and sends the reset e-mail
    reset, new_password = f"/reset/{params['uidb64']}/{params['token']}/", "a-Long-new-passw0rd"
    get("reset link", visitor, reset)
    set_password = f"/reset/{params['uidb64']}/set-password/"
    post("reset, passwords differ", visitor, set_password, {"new_password1": new_password, "new_password2": "other"})
    post("reset", visitor, set_password, {"new_password1": new_password, "new_password2": new_password}, follow=True)
    get("reset link, used", visitor, reset)
    get("admin index (our base_site.html)", admin, "/admin/")
    get("API docs (our ninja/swagger.html)", shop, "/api/v1/docs")
    # Two-factor sign-in: the code step (the staff persona has an authenticator), and a set-up.
    two_steps = Client()
    post(
        "login, a user with an authenticator",
        two_steps,
        "/login/",
        {"username": staff.user.email, "password": PASSWORD},
    )
    post("login, wrong code", two_steps, "/login/verify/", {"code": "000000"})
    post("two-factor set-up: start", shop, "/account/two-factor/", {"action": "start"}, follow=True)
    post("two-factor set-up: wrong code", shop, "/account/two-factor/", {"action": "confirm", "code": "000000"})
    intruder = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT + 1):
        post(f"login failure {attempt + 1}", intruder, "/login/", {"username": "nobody@example.com", "password": "x"})

    # The error pages: 404 from a view, 500 from its handler, 414 from the request guard.
    get("414, an address too long", shop, "/pos/?q=" + "A" * 9000)
    get("404, another partner's key", partner, "/partner/keys/999999/")
    server_error = get_resolver().resolve_error_handler(500)
    seen.check("500 handler", server_error(RequestFactory().get("/pos/")))


def rows_to_confirm(html: str) -> list[tuple[str, str]]:
    """(uid, label) of each row button that opens the confirmation dialog."""

    found = []

    class Buttons(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if "data-revoke-uid" in attrs:
                found.append((attrs["data-revoke-uid"], attrs.get("data-revoke-label", "")))

    Buttons().feed(html)
    return found


@pytest.fixture
def crawled(customer, outsider, reseller, other_reseller, staff, stripe_on, mailoutbox):
    return crawl(
        customer=customer,
        outsider=outsider,
        reseller=reseller,
        other_reseller=other_reseller,
        staff=staff,
        stripe_on=stripe_on,
        mailoutbox=mailoutbox,
    )


def template_files() -> set[str]:
    root = Path(settings.TEMPLATES[0]["DIRS"][0])
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_no_page_shows_template_syntax_and_every_template_is_rendered(crawled):
    assert crawled.seen > 300
    assert crawled.problems == [], "template syntax shown to people:\n" + "\n".join(crawled.problems)
    root = str(Path(settings.TEMPLATES[0]["DIRS"][0]))
    ours = {name.split("|", 1)[1] for name in crawled.rendered if name.startswith(root)}
    never = sorted(template_files() - ours)
    assert never == [], f"templates this guard never rendered (add a visit that shows them): {never}"


# --- the detector itself -----------------------------------------------------------------------


def test_a_comment_spanning_lines_is_printed_and_the_detector_sees_it():
    html = Template("<p>Hi</p>\n{# a note\n   for developers #}\n{# one line is fine #}").render(Context())
    assert "a note" in html and "one line" not in html  # Django's comments end on their line
    html += "<script>if (a) {{}}</script>"
    assert syntax_in(visible_text(html)) == ["Hi {# a note for developers #}"]


def test_scripts_styles_and_plain_braces_are_not_template_syntax():
    html = '<style>a{color:red}</style><script>x = {"a": {"b": 1}}; if (y) {{}}</script><p>{ "ok" }</p>'
    assert syntax_in(visible_text(html)) == []
    assert syntax_in(visible_text('<input type="text" placeholder="{{ name }}">')) == ["{{ name }}"]


def _lint_templates(*paths) -> list[subprocess.CompletedProcess]:
    """The two template steps of `make lint`: djlint (syntax) and the line-length check."""
    djlint = [sys.executable, "-m", "djlint", "--lint", "--configuration", str(ROOT / "pyproject.toml"), *paths]
    lines = [sys.executable, str(ROOT / "scripts" / "check_templates.py"), *paths]
    return [subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT) for argv in (djlint, lines)]


def test_the_template_lint_passes_our_templates_and_rejects_a_comment_spanning_lines(tmp_path):
    ours = [str(ROOT / "fiscobridge" / "templates"), str(ROOT / "fiscobridge" / "notifications" / "templates")]
    for step in _lint_templates(*ours):
        assert step.returncode == 0, step.stdout + step.stderr
    (tmp_path / "bad.html").write_text("<p>ok</p>\n{# a note\n   on two lines #}\n<p>" + "x" * 121 + "</p>\n")
    syntax, lines = _lint_templates(str(tmp_path))
    assert syntax.returncode == 1 and "D058" in syntax.stdout
    assert lines.returncode == 1 and f"{tmp_path / 'bad.html'}:4: 128 characters" in lines.stderr
