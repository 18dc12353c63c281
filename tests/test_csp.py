"""Content-Security-Policy (issue 10, item 8): only our own origin, no inline script or style, no
eval, on every page of both portals, the admin and the API docs. Every browser test fails on a
violation (the `context` fixture in conftest.py); these tests prove that guard and cover the
pages no other browser test opens."""

import re
from pathlib import Path

import pytest
from django.test import Client
from playwright.sync_api import expect

from fiscobridge.accounts.two_factor import confirmed_authenticator
from tests.factories import PASSWORD, browser_for, key_of, log_in, redeem, totp_code

ROOT = Path(__file__).resolve().parent.parent
# Inline script (no src), style attributes and elements, event-handler attributes, javascript: URLs.
INLINE = (r"<script(?![^>]*\bsrc=)[^>]*>", r"\sstyle\s*=", r"<style\b", r"\son[a-z]+\s*=", "javascript:")
TEMPLATE_DIRS = [ROOT / "fiscobridge" / "templates", ROOT / "fiscobridge" / "notifications" / "templates"]


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["anonymous", "customer", "reseller", "staff"])
def test_every_kind_of_page_sends_the_policy(who, customer, reseller, staff):
    client = {"anonymous": Client(), "customer": None, "reseller": None, "staff": None}[who]
    client = client or browser_for({"customer": customer, "reseller": reseller, "staff": staff}[who])
    for path in ["/login/", "/pos/", "/partner/", "/admin/", "/api/v1/docs", "/account/two-factor/", "/no-such-page/"]:
        response = client.get(path)
        rules = policy(response)
        assert rules["default-src"] == ["'self'"], path
        assert rules["object-src"] == ["'none'"] and rules["frame-ancestors"] == ["'none'"], path
        header = response["Content-Security-Policy"]
        assert "unsafe-inline" not in header and "unsafe-eval" not in header, path
        assert "script-src" not in rules and "style-src" not in rules, path  # both fall back to 'self'


@pytest.mark.django_db
def test_only_the_api_docs_page_allows_data_images(customer):
    client = browser_for(customer)
    assert policy(client.get("/api/v1/docs"))["img-src"] == ["'self'", "data:"]
    assert "img-src" not in policy(client.get("/pos/"))


def test_no_template_has_inline_script_style_or_event_handlers():
    found = []
    for folder in TEMPLATE_DIRS:
        for path in folder.rglob("*.html"):
            if "email" in path.parts or path.parent.name == "email":
                continue  # e-mails are read in a mail client, not served under the policy
            text = path.read_text()
            for pattern in (
                r"<script(?![^>]*\bsrc=)[^>]*>",
                r"\sstyle\s*=",
                r"<style\b",
                r"\son[a-z]+\s*=",
                "javascript:",
            ):
                found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert found == []


# --- in the browser ----------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_guard_sees_a_refused_inline_script_and_style(page, live_server, csp_violations):
    page.goto(f"{live_server.url}/login/")
    page.evaluate(
        """() => {
        const s = document.createElement("script"); s.textContent = "window.__ran = true"; document.body.append(s);
        document.body.setAttribute("style", "color: red");
    }"""
    )
    expect(page.get_by_role("heading", name="Log in to FiscoBridge")).to_be_visible()
    page.wait_for_timeout(200)
    assert page.evaluate("window.__ran") is None  # the browser did not run it
    text = "\n".join(csp_violations)
    assert "script-src" in text and "style-src" in text
    csp_violations.clear()  # provoked on purpose: the test itself must not fail on them


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_api_docs_work_under_the_policy(page, live_server, customer):
    page.goto(f"{live_server.url}/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("FiscoBridge Licensing API")
    page.get_by_text("/api/v1/keys/validate").first.click()
    expect(page.get_by_role("button", name="Try it out").first).to_be_visible()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_admin_works_under_the_policy(page, live_server, staff, reseller, customer):
    page.goto(f"{live_server.url}/admin/")
    page.get_by_label("Email").fill(staff.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Code").fill(totp_code(confirmed_authenticator(staff.user), steps_ahead=1))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    for path in [
        "/admin/accounts/user/",
        f"/admin/accounts/user/{reseller.user.pk}/change/",
        "/admin/accounts/partner/",
        f"/admin/accounts/partner/{reseller.partner.pk}/change/",
        f"/admin/accounts/account/{customer.account.pk}/change/",
        "/admin/keys/activationkey/",
        "/admin/audit/event/",
        "/admin/accounts/partner/add/",
    ]:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        expect(page.locator("#content")).to_be_visible()
    # The theme toggle and the action bar are scripts from files: they run.
    page.goto(f"{live_server.url}/admin/accounts/user/")
    page.locator("#action-toggle").check()
    expect(page.locator(".action-counter")).to_contain_text("selected")
    page.locator("#toggle-theme, .theme-toggle").first.click()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_page_of_both_portals_loads_under_the_policy(page, live_server, customer, reseller, issue):
    """Each page is opened and left to run its scripts; the `context` fixture fails the test on
    any refusal. (The other browser tests drive these pages' dialogs and forms under it too.)"""
    code = issue(seats=1)[0]
    redeem(customer, code)
    key_id = key_of(code).pk
    anonymous_pages = ["/", "/login/", "/password_reset/", "/password_reset/done/", "/reset/done/", "/no-such-page/"]
    for path in anonymous_pages:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
    log_in(page, live_server, customer)
    for path in [
        "/api/v1/docs",
        "/pos/",
        "/pos/?upgrade=1",
        "/pos/buy/",
        "/integrations/",
        "/integrations/?upgrade=1",
        "/billing/subscriptions/",
        "/activity/",
        "/tokens/",
        "/account/two-factor/",
    ]:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Log out").click()
    log_in(page, live_server, reseller)
    for path in [
        "/partner/",
        "/partner/issue/",
        "/partner/keys/",
        f"/partner/keys/{key_id}/",
        "/partner/lookup/",
        "/partner/tokens/",
        "/partner/webhooks/",
        "/account/two-factor/",
    ]:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
