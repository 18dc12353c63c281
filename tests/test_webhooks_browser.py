"""The Partner Portal's Webhooks page in a real browser (Playwright + Debian's Chromium), under
the strict Content-Security-Policy (the `context` fixture fails the test on any refusal)."""

import re

import pytest
from playwright.sync_api import expect
from standardwebhooks import Webhook

from fiscobridge.keys.issuance import issue_keys
from fiscobridge.webhooks.models import Delivery
from tests.factories import log_in, run_tasks
from tests.webhook_receiver import start_receiver, stop_receiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    started = start_receiver()
    yield started
    stop_receiver(started)


def fits(page, width: int) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= width


def test_add_an_endpoint_see_its_secret_once_see_a_delivery_and_resend_it(page, live_server, reseller, receiver):
    log_in(page, live_server, reseller)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks", exact=True).click()
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description").fill("Back office")
    page.get_by_role("checkbox", name=re.compile("key.voided")).uncheck()
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_text("it is shown only once")).to_be_visible()
    secret = page.locator("#new-secret").inner_text().strip()
    assert secret.startswith("whsec_")
    row = page.locator("tr[data-endpoint]")
    expect(row).to_contain_text(receiver.url)
    expect(row).not_to_contain_text("key.voided")
    page.goto(f"{live_server.url}/partner/webhooks/")  # (a reload would send the form again)
    expect(page.locator("tr[data-endpoint]")).to_have_count(1)
    assert secret not in page.content()  # shown once

    issue_keys(partner=reseller.partner, actor=reseller.user, product="pos", seats=2, months=12, quantity=3)
    run_tasks()  # the worker delivers
    [request] = receiver.requests
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "batch.issued"

    page.locator("tr[data-endpoint]").get_by_role("link", name="Deliveries").click()
    delivery = page.locator("tr[data-delivery]")
    expect(delivery).to_have_count(1)
    expect(delivery).to_contain_text("batch.issued")
    expect(delivery.get_by_test_id("delivery-status")).to_have_text("Delivered")
    expect(delivery).to_contain_text("200")

    delivery.get_by_role("button", name=re.compile("^Resend event")).click()
    expect(delivery.get_by_test_id("delivery-status")).to_contain_text("Queued to be sent again")
    expect(delivery.get_by_test_id("delivery-status")).to_contain_text("Pending")
    run_tasks()
    page.reload()
    expect(page.locator("tr[data-delivery]").get_by_test_id("delivery-status")).to_have_text("Delivered")
    assert Delivery.objects.get().attempts == 2
    assert len(receiver.requests) == 2 and receiver.requests[1].headers["webhook-id"] == request.headers["webhook-id"]

    for path in ("/partner/webhooks/", page.url.replace(live_server.url, "")):
        page.set_viewport_size({"width": 375, "height": 800})
        page.goto(f"{live_server.url}{path}")
        assert fits(page, 375), path  # usable on a phone: no sideways scrolling of the page
