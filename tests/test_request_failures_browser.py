"""No silent failure (issue 12, item 2): every way an htmx request can fail — a server error, no
network, no answer in time, too many requests — shows a message where the user is looking, says
whether the action may have happened and how to check. The browser is real (Chromium); the
failures are made at the network layer with Playwright's request routing."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _review_a_key(page, live_server, customer, code):
    log_in(page, live_server, customer)
    page.get_by_role("button", name="Upgrade Plan").click()
    page.get_by_role("dialog", name="Upgrade Plan").get_by_role("button", name="Activate Key").click()
    dialog = page.get_by_role("dialog", name="Activate Key")
    dialog.get_by_label("Activation key").fill(code)
    dialog.get_by_label("Activation key").dispatch_event("input")
    dialog.get_by_role("button", name="Validate").click()
    expect(dialog.locator("dl.details")).to_contain_text("Cloud POS")
    return dialog


@pytest.mark.parametrize(
    "failure, expected",
    [
        ("server_error", "Something went wrong on our side (error 500)"),
        ("network", "No connection to FiscoBridge"),
        ("timeout", "did not answer in time"),
    ],
)
def test_a_failed_activation_says_what_may_have_happened(page, live_server, customer, issue, failure, expected):
    [code] = issue()
    dialog = _review_a_key(page, live_server, customer, code)
    if failure == "server_error":
        page.route("**/keys/activate/", lambda route: route.fulfill(status=500, body="boom"))
    elif failure == "network":
        page.route("**/keys/activate/", lambda route: route.abort("internetdisconnected"))
    else:
        page.evaluate("htmx.config.timeout = 500")
        page.route("**/keys/activate/", lambda route: None)  # never answered
    dialog.get_by_role("button", name="Activate").click()
    alert = dialog.locator(".request-failure")
    expect(alert).to_contain_text(expected)
    expect(alert).to_contain_text("open Subscriptions before trying again")
    expect(alert).to_have_attribute("role", "alert")


def test_too_many_requests_counts_down_the_retry_after(page, live_server, customer, issue):
    [code] = issue()
    dialog = _review_a_key(page, live_server, customer, code)
    page.route(
        "**/keys/activate/", lambda route: route.fulfill(status=429, headers={"Retry-After": "3"}, body="slow down")
    )
    dialog.get_by_role("button", name="Activate").click()
    alert = dialog.locator(".request-failure")
    expect(alert).to_contain_text("Too many requests: this was not done.")
    expect(alert).not_to_contain_text("may have been activated")  # refused: nothing to check
    expect(alert.locator(".retry-countdown")).to_have_text(re.compile(r"You can try again in [23] s\."))
    expect(alert.locator(".retry-countdown")).to_have_text("You can try again now.", timeout=6000)


def test_a_failed_issue_points_to_the_keys_list(page, live_server, reseller):
    log_in(page, live_server, reseller)
    page.goto(f"{live_server.url}/partner/issue/")
    page.route(
        "**/partner/issue/",
        lambda route: route.fulfill(status=503, body="busy") if route.request.method == "POST" else route.continue_(),
    )
    page.get_by_role("button", name=re.compile("Issue")).last.click()
    alert = page.locator(".request-failure")
    expect(alert).to_contain_text("error 503")
    expect(alert).to_contain_text("open Keys, where an issued batch is listed")


def test_a_new_attempt_clears_the_old_message(page, live_server, customer, issue):
    [code] = issue()
    dialog = _review_a_key(page, live_server, customer, code)
    page.route("**/keys/activate/", lambda route: route.fulfill(status=500, body="boom"))
    dialog.get_by_role("button", name="Activate").click()
    expect(dialog.locator(".request-failure")).to_have_count(1)
    page.unroute("**/keys/activate/")
    dialog.get_by_role("button", name="Activate").click()
    expect(dialog.get_by_text("Key activated.")).to_be_visible()
    expect(dialog.locator(".request-failure")).to_have_count(0)
