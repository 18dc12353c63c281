"""Every page usable by everyone (issue 12, item 7), in a real browser:

- axe-core (npm, pinned in package-lock.json, installed by scripts/test.sh) checks every page of
  both portals, the sign-in pages, Settings and the API docs, signed in as each persona that sees
  the page: no serious or critical violation;
- every page fits a 375 px phone and a 1280 px desktop: nothing scrolls the page sideways, and no
  element is wider than the window except inside a container made to scroll (a table's wrapper);
  a screenshot of each page at each width is written to test-results/accessibility/<database>/
  <persona>/ (not kept in git) for a person to look at.

`PAGES` names every page route; `NOT_PAGES` every other route with the reason it is not a page.
`test_every_route_is_a_page_or_said_not_to_be` reads Django's resolver, so a page added later
(by anyone) fails until it is in the table — and then it is checked like the others.

One browser context per persona, every page in a loop: a test per persona, not per page, keeps the
browser start-up and the fixtures (a customer with certificates, keys, …) to one each.
"""

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.db import connection
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from fiscobridge.partners.large_batches import start_large_issue
from fiscobridge.webhooks.services import create_endpoint
from tests.factories import PASSWORD, browser_for, owned_objects, run_tasks, start_checkout_page
from tests.test_tenant_matrix import url_patterns

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-results" / "accessibility"
WIDTHS = (375, 1280)
FAILING_IMPACTS = {"serious", "critical"}

CUSTOMERS = ("customer", "teammate")
RESELLER = ("reseller",)
SIGNED_IN = ("customer", "teammate", "reseller", "staff")
ANONYMOUS = ("anonymous",)


@dataclass(frozen=True)
class Page:
    """One page: its address (with {key_id}, {session_id} or {reset} filled in by the test), who
    sees it, and — for a state that only an action shows — what to do after loading it."""

    path: str
    personas: tuple[str, ...]
    then: Callable | None = field(default=None, compare=False)
    name: str = ""
    ready: str = ""  # what shows that a page drawn by its own script has been drawn


def _open_upgrade_modal(page, objects) -> None:
    # The Upgrade Plan modal and its Activate Key dialog are most of what a customer does on these
    # pages; closed, a <dialog> is not rendered, so axe would not see them.
    page.get_by_role("button", name="Upgrade Plan").click()
    page.get_by_role("dialog", name="Upgrade Plan").wait_for()


def _open_activate_dialog(page, objects) -> None:
    _open_upgrade_modal(page, objects)
    page.get_by_role("dialog", name="Upgrade Plan").get_by_role("button", name="Activate Key").click()
    page.get_by_role("dialog", name="Activate Key").wait_for()


def _issue_two_keys(page, objects) -> None:
    form = page.locator("form.issue-form")
    form.get_by_label("Number of keys").fill("2")
    form.get_by_role("button", name="Issue keys").click()
    page.get_by_role("heading", name=re.compile(r"^2 keys issued in batch")).wait_for()


def _staff_password_step(page, objects) -> None:
    # The code step exists only between a password and a code: sign in as the staff user (who has
    # an authenticator) to reach it.
    page.get_by_label("Email").fill(objects["staff_email"])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_label(re.compile("code", re.I)).first.wait_for()


# Route (as Django's resolver writes it) → the page(s) at that route. A route may have several
# entries: a page in another state (a dialog open, a result shown).
PAGES: dict[str, list[Page]] = {
    "": [Page("/", ANONYMOUS)],
    "login/": [Page("/login/", ANONYMOUS)],
    "login/verify/": [Page("/login/", ANONYMOUS, then=_staff_password_step, name="login-verify")],
    "account/two-factor/": [Page("/account/two-factor/", SIGNED_IN)],
    "password_reset/": [Page("/password_reset/", ANONYMOUS)],
    "password_reset/done/": [Page("/password_reset/done/", ANONYMOUS)],
    "reset/<uidb64>/<token>/": [Page("{reset}", ANONYMOUS, name="reset-set-password")],
    "reset/done/": [Page("/reset/done/", ANONYMOUS)],
    "api/v1/docs": [Page("/api/v1/docs", ("customer", "reseller"), ready=".opblock")],
    # Client Portal
    "pos/": [
        Page("/pos/", CUSTOMERS),
        Page("/pos/", CUSTOMERS, then=_open_upgrade_modal, name="pos-upgrade-modal"),
        Page("/pos/", CUSTOMERS, then=_open_activate_dialog, name="pos-activate-dialog"),
    ],
    "pos/buy/": [Page("/pos/buy/", CUSTOMERS)],
    "integrations/": [
        Page("/integrations/", CUSTOMERS),
        Page("/integrations/", CUSTOMERS, then=_open_upgrade_modal, name="integrations-upgrade-modal"),
    ],
    "billing/subscriptions/": [Page("/billing/subscriptions/", CUSTOMERS)],
    "billing/checkout/success/": [Page("/billing/checkout/success/?session_id={session_id}", ("customer",))],
    "billing/checkout/cancelled/": [Page("/billing/checkout/cancelled/?product=pos", CUSTOMERS)],
    "activity/": [Page("/activity/", CUSTOMERS)],
    "tokens/": [Page("/tokens/", CUSTOMERS)],
    "settings/": [Page("/settings/", CUSTOMERS)],
    # Partner Portal
    "partner/": [Page("/partner/", RESELLER)],
    "partner/issue/": [
        Page("/partner/issue/", RESELLER),
        Page("/partner/issue/", RESELLER, then=_issue_two_keys, name="partner-issued-codes"),
    ],
    "partner/issue/jobs/<int:job_id>/": [
        Page("/partner/issue/jobs/{job_id}/", RESELLER, name="partner-large-batch-ready"),
        Page("/partner/issue/jobs/{queued_job_id}/", RESELLER, name="partner-large-batch-queued"),
    ],
    "partner/keys/": [Page("/partner/keys/", RESELLER)],
    "partner/webhooks/": [Page("/partner/webhooks/", RESELLER)],
    "partner/webhooks/<int:endpoint_id>/": [Page("/partner/webhooks/{endpoint_id}/", RESELLER)],
    "partner/keys/<int:key_id>/": [Page("/partner/keys/{key_id}/", RESELLER)],
    "partner/lookup/": [Page("/partner/lookup/", RESELLER)],
    "partner/tokens/": [Page("/partner/tokens/", RESELLER)],
    "partner/settings/": [Page("/partner/settings/", RESELLER)],
}

# Every other route, and why it is not a page of its own. (The Django admin, `admin/…`, is Django's
# own staff interface with Django's own templates: not checked here.)
NOT_PAGES = {
    "metrics": "Prometheus text for the monitoring system",
    "healthz": "JSON probe",
    "readyz": "JSON probe",
    "billing/webhook/": "Stripe's webhook endpoint (POST, JSON)",
    "logout/": "POST only; answers with a redirect",
    "password_change/": "not linked or used: passwords change through the reset e-mail",
    "password_change/done/": "not linked or used: passwords change through the reset e-mail",
    "pos/seats/": "htmx fragment of pos/ (checked inside it)",
    "pos/certificates/": "htmx fragment of pos/ (checked inside it)",
    "pos/certificates/upload/": "POST only (the upload dialog of pos/)",
    "pos/certificates/revoke/": "POST only (the revoke confirmation of pos/)",
    "integrations/usage/": "htmx fragment of integrations/",
    "integrations/connections/": "POST only (create, on integrations/)",
    "integrations/connections/remove/": "POST only (on integrations/)",
    "keys/validate/": "POST only, htmx fragment of the Activate Key dialog (checked open on pos/)",
    "keys/activate/": "POST only, htmx fragment of the Activate Key dialog",
    "billing/checkout/": "POST only; redirects to Stripe Checkout",
    "billing/checkout/status/": "htmx fragment polled by billing/checkout/success/",
    "billing/portal/": "POST only; redirects to Stripe's Customer Portal",
    "billing/seats/": "POST only (seat change on pos/buy/)",
    "billing/invoices/": "htmx fragment of pos/buy/ and billing/subscriptions/",
    "billing/prices/": "htmx fragment of the Upgrade Plan modal's Purchase Seats (checked open on pos/)",
    ".well-known/jwks.json": "JSON: the offline leases' public keys",
    "tokens/<int:token_id>/revoke/": "POST only; redirects to tokens/",
    "partner/keys/table/": "htmx fragment of partner/keys/ (checked inside it)",
    "partner/keys/export.csv": "a CSV download",
    "partner/issue/jobs/<int:job_id>/codes.csv": "POST only; a CSV download (its form is on the job's page)",
    "partner/keys/<int:key_id>/revoke/": "POST only; redirects to the key's page",
    "partner/tokens/<int:token_id>/revoke/": "POST only; redirects to partner/tokens/",
    "partner/webhooks/<int:endpoint_id>/toggle/": "POST only; redirects to the endpoint's page",
    "partner/webhooks/<int:endpoint_id>/delete/": "POST only; redirects to partner/webhooks/",
    "partner/webhooks/deliveries/<int:delivery_id>/resend/": "POST only (Resend, on the endpoint's page)",
}
API_DOCS = "api/v1/docs"


def _routes_to_check() -> set[str]:
    # The API answers JSON except its docs page; the admin is Django's (see NOT_PAGES).
    return {
        route
        for route in url_patterns()
        if not route.startswith("admin/") and (not route.startswith("api/") or route == API_DOCS)
    }


def test_every_route_is_a_page_or_said_not_to_be():
    routes = _routes_to_check()
    missing = routes - set(PAGES) - set(NOT_PAGES)
    assert not missing, (
        "routes that the accessibility test neither checks nor explains: add each to PAGES "
        f"(with the personas who see it) or to NOT_PAGES (with why it is not a page): {sorted(missing)}"
    )
    gone = (set(PAGES) | set(NOT_PAGES)) - routes
    assert not gone, f"table rows for routes that no longer exist: {sorted(gone)}"
    assert not set(PAGES) & set(NOT_PAGES)


# --- the checks, in the page ------------------------------------------------------------------------

# Everything wider than the window that is not inside a container that scrolls on its own
# (overflow-x auto/scroll, e.g. .table-wrap). Only the outermost offender of each branch is
# reported. Elements fully off-screen to the left (the skip link until focused) are not wider.
_OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const problems = [];
  if (document.documentElement.scrollWidth > window.innerWidth) {
    problems.push(`the page scrolls sideways: ${document.documentElement.scrollWidth}px > ${window.innerWidth}px`);
  }
  const scrollsItself = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const x = getComputedStyle(p).overflowX;
      if (x === "auto" || x === "scroll") return true;
    }
    return false;
  };
  const reported = new Set();
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || box.right <= 0) continue;
    if (box.right <= width + 1 && box.width <= width) continue;
    if (scrollsItself(el)) continue;
    let p = el.parentElement, inside = false;
    for (; p; p = p.parentElement) if (reported.has(p)) { inside = true; break; }
    if (inside) continue;
    reported.add(el);
    const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
      (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\\s+/).join(".") : "");
    problems.push(`${name} reaches ${Math.round(box.right)}px (window ${width}px): ` +
      JSON.stringify((el.innerText || "").slice(0, 60)));
  }
  return problems;
}"""

# Loaded, htmx done (a panel loaded after the page, e.g. invoices), and a frame drawn after the
# last resize (the page's script reacts to it in an animation frame).
_SETTLED = """() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve(
  document.readyState === "complete" && !document.querySelector(".htmx-request, .htmx-settling, .htmx-swapping")))))"""

_AXE_RUN = """async () => {
  const results = await axe.run(document, { resultTypes: ["violations"] });
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ") + " — " + (n.failureSummary || "").replace(/\\s+/g, " ")),
  }));
}"""


def _axe_source() -> str:
    if not AXE.is_file():
        message = f"axe-core is not installed ({AXE}): run `npm ci` (scripts/test.sh does)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; the accessibility tests are required in CI")
        pytest.skip(f"{message}. CI would fail here.")
    return AXE.read_text(encoding="utf-8")


def _axe(page, source: str) -> list[dict]:
    # page.add_script_tag(path=…) inserts the file as an inline <script>, which our
    # Content-Security-Policy (scripts from 'self' only, no 'unsafe-inline') refuses: Playwright
    # raises "Executing inline script violates the following Content Security Policy directive",
    # and the test's CSP watch fails. page.evaluate runs in the page through the
    # DevTools protocol, which the CSP does not govern, so the product's policy stays as it is.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(source)
    return [v for v in page.evaluate(_AXE_RUN) if v["impact"] in FAILING_IMPACTS]


def _describe(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"  [{v['impact']}] {v['id']}: {v['help']}")
        lines.extend(f"      {node}" for node in v["nodes"][:5])
    return "\n".join(lines)


def _check_folded_menu(page, source: str, shot: Path) -> list[str]:
    """On a phone the sidebar's links fold under the Menu button: folded at first (the page's own
    content starts on the first screen), and the button opens them, all reachable and fitting."""
    nav = page.get_by_role("navigation", name="Main")
    toggle = nav.get_by_role("button", name="Menu")
    links = nav.locator(".nav-groups a")
    problems = []
    if toggle.get_attribute("aria-expanded") != "false" or links.first.is_visible():
        problems.append("on a phone the sidebar's links are not folded under the Menu button")
    # Folded, it is one bar (the brand and the button), also on a page shorter than the window.
    if (height := nav.bounding_box()["height"]) > 100:
        problems.append(f"the folded sidebar is {height:.0f}px tall")
    toggle.click()
    if toggle.get_attribute("aria-expanded") != "true" or not all(link.is_visible() for link in links.all()):
        problems.append("the Menu button does not show every sidebar link")
    page.screenshot(path=shot, full_page=True)
    if violations := _axe(page, source):
        problems.append(f"with the menu open:\n{_describe(violations)}")
    if overflow := page.evaluate(_OVERFLOW):
        problems.append("with the menu open, does not fit:\n  " + "\n  ".join(overflow))
    return problems


# --- the world each persona sees -------------------------------------------------------------------


@pytest.fixture
def world(customer, teammate, reseller, staff, issue, stripe_on):
    objects = owned_objects(customer, reseller, issue)
    objects["session_id"] = start_checkout_page(customer)
    objects["staff_email"] = staff.user.email
    # A large batch's page with its codes ready (the download buttons)…
    objects["job_id"] = start_large_issue(
        partner=reseller.partner, actor=reseller.user, product="pos", seats=1, months=1, quantity=2
    ).pk
    run_tasks()
    # A webhook endpoint of the reseller, for its page (the list shows it too).
    objects["endpoint_id"] = create_endpoint(
        partner=reseller.partner, actor=reseller.user, url="https://hooks.example.com/fb", events=["batch.issued"]
    ).endpoint.pk
    # …and one still waiting for a worker: its progress bar (the page polls it every second).
    objects["queued_job_id"] = start_large_issue(
        partner=reseller.partner, actor=reseller.user, product="pos", seats=1, months=1, quantity=2
    ).pk
    user = customer.user
    objects["reset"] = (
        f"/reset/{urlsafe_base64_encode(force_bytes(user.pk))}/{default_token_generator.make_token(user)}/"
    )
    return {
        "personas": {"customer": customer, "teammate": teammate, "reseller": reseller, "staff": staff},
        "objects": objects,
    }


def _sign_in(context, live_server, persona) -> None:
    # The session of a signed-in user (past the code step for staff), as its cookie: the login
    # page itself is checked as a page of its own.
    client = browser_for(persona)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])


def _pages_for(persona: str) -> list[tuple[str, Page]]:
    return [(route, page) for route, pages in PAGES.items() for page in pages if persona in page.personas]


def _slug(route: str, page: Page) -> str:
    return page.name or (re.sub(r"[^a-z0-9]+", "-", route.lower()).strip("-") or "home")


@pytest.mark.parametrize("persona", ["customer", "teammate", "reseller", "staff", "anonymous"])
def test_every_page_passes_axe_and_fits_a_phone(persona, world, context, live_server):
    source = _axe_source()
    # make test runs the SQLite and PostgreSQL passes at once: each writes its own screenshots.
    shots = SCREENSHOTS / connection.vendor / persona
    if persona != "anonymous":
        _sign_in(context, live_server, world["personas"][persona])
    page = context.new_page()
    pages = _pages_for(persona)
    assert pages, persona
    failures = []
    menu_checked = False  # the sidebar is the same on every page: its phone menu is opened once
    for route, entry in pages:
        slug = _slug(route, entry)
        url = live_server.url + entry.path.format(**world["objects"])
        # Loaded once, at the desktop width, then narrowed to a phone's: a window resized, as the
        # page's script (the folding sidebar, scrolling tables) must also handle.
        page.set_viewport_size({"width": WIDTHS[-1], "height": 900})
        response = page.goto(url)
        assert response is not None and response.ok, f"{url} as {persona}: {response and response.status}"
        if entry.then:
            entry.then(page, world["objects"])
        if entry.ready:
            page.locator(entry.ready).first.wait_for()
        for width in reversed(WIDTHS):
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_function(_SETTLED)
            shot = shots / f"{slug}-{width}.png"
            page.screenshot(path=shot, full_page=True)
            if violations := _axe(page, source):
                failures.append(f"{slug} at {width}px ({page.url}):\n{_describe(violations)}")
            if overflow := page.evaluate(_OVERFLOW):
                failures.append(f"{slug} at {width}px does not fit ({shot}):\n  " + "\n  ".join(overflow))
            if width < 760 and not menu_checked and page.locator(".menu-toggle").count():
                failures.extend(_check_folded_menu(page, source, shots / f"{slug}-{width}-menu.png"))
                menu_checked = True
    assert not failures, f"as {persona}:\n" + "\n".join(failures)
