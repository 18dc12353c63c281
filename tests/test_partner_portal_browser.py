"""The Partner Portal in a real browser (Playwright + Debian's Chromium against live_server)."""

import csv
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from fiscobridge.keys.codes import code_digest, generate_code
from fiscobridge.keys.models import ActivationKey
from fiscobridge.keys.services import revoke_key
from fiscobridge.partners.models import IssueJob
from tests.factories import activate, hint_of, key_of, log_in, run_tasks

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CODE = re.compile(r"^(POS|INT)-[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}$")


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def issue_in_page(
    page: Page, *, quantity: int, reference: str = "", product: str = "Cloud POS", tier: str = "", email: str = ""
) -> list[str]:
    nav(page, "Issue keys")
    form = page.locator("form.issue-form")
    form.get_by_label("Product").select_option(label=product)
    if tier:
        form.get_by_label("Tier").select_option(label=tier)
    form.get_by_label("Seats").fill("3")
    form.get_by_label("Months of validity").fill("12")
    form.get_by_label("Number of keys").fill(str(quantity))
    form.get_by_label("Reference").fill(reference)
    if email:
        form.get_by_label("E-mail this key to a customer (optional)").fill(email)
    form.get_by_role("button", name="Issue keys").click()
    expect(page.get_by_role("heading", name=re.compile(rf"^{quantity} keys? issued in batch"))).to_be_visible()
    codes = [c.strip() for c in page.locator("#issued-codes [data-code]").all_text_contents()]
    assert len(codes) == quantity and all(CODE.match(c) for c in codes)
    return codes


def download_text(page: Page, trigger) -> tuple[str, str]:
    with page.expect_download() as info:
        trigger()
    download = info.value
    path = download.path()
    return download.suggested_filename, open(path, encoding="utf-8").read()


def test_issue_a_batch_and_download_its_csv(page, live_server, reseller):
    log_in(page, live_server, reseller)
    codes = issue_in_page(page, quantity=3, reference='Order, "quoted" 42')
    expect(page.get_by_text("shown only this once")).to_be_visible()
    name, text = download_text(page, lambda: page.get_by_role("button", name="Download CSV").click())
    rows = list(csv.DictReader(text.splitlines()))
    batch = key_of(codes[0]).batch
    assert name == f"fiscobridge-batch-{batch.pk}-codes.csv"
    assert list(rows[0]) == ["code", "id", "product", "tier", "seats", "months", "reference", "batch", "redeem_by"]
    assert [r["code"] for r in rows] == codes
    assert {int(r["id"]) for r in rows} == {key_of(c).pk for c in codes}
    assert all(
        r["reference"] == 'Order, "quoted" 42' and r["seats"] == "3" and r["batch"] == str(batch.pk) for r in rows
    )
    # The Excel variant: the same file after a UTF-8 byte order mark.
    with page.expect_download() as info:
        page.get_by_role("button", name="CSV for Excel").click()
    excel = Path(info.value.path()).read_bytes()
    assert info.value.suggested_filename == f"fiscobridge-batch-{batch.pk}-codes-excel.csv"
    assert excel.startswith(b"\xef\xbb\xbf") and excel[3:].decode("utf-8").splitlines() == text.splitlines()
    # Copy buttons work too (the page's own secure context: 127.0.0.1).
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.get_by_role("button", name="Copy code 2").click()
    expect(page.get_by_text(f"Copied {codes[1]}")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == codes[1]
    page.get_by_role("button", name="Copy all codes").click()
    expect(page.get_by_text("Copied 3 codes")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()").split("\n") == codes


def test_codes_appear_once_and_never_again(page, live_server, reseller):
    log_in(page, live_server, reseller)
    codes = issue_in_page(page, quantity=2, reference="Once only")

    def assert_no_codes(where: str, text: str) -> None:
        for code in codes:
            assert code not in text and code[4:] not in text, f"a code is shown again on {where}"

    page.reload()
    expect(page.get_by_role("heading", name="New batch")).to_be_visible()
    assert_no_codes("reload", page.content())
    page.go_back()
    assert_no_codes("back", page.content())
    page.goto(f"{live_server.url}/partner/issue/")
    nav(page, "Keys")
    expect(page.get_by_role("link", name=hint_of(codes[0]))).to_be_visible()
    assert_no_codes("the keys list", page.content())
    page.get_by_role("link", name=hint_of(codes[0])).click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    assert_no_codes("the key detail", page.content())
    nav(page, "Keys")
    _, export = download_text(page, lambda: page.get_by_test_id("export-link").click())
    assert hint_of(codes[0]) in export and hint_of(codes[1]) in export
    assert_no_codes("the export", export)
    nav(page, "Dashboard")
    assert_no_codes("the dashboard", page.content())
    # htmx kept no snapshot of the codes page either.
    assert_no_codes("htmx's history cache", page.evaluate("JSON.stringify(localStorage)"))


def test_email_a_single_key_to_a_customer(page, live_server, reseller, mailoutbox):
    log_in(page, live_server, reseller)
    nav(page, "Issue keys")
    form = page.locator("form.issue-form")
    email = form.get_by_label("E-mail this key to a customer (optional)")
    expect(email).to_be_visible()
    form.get_by_label("Number of keys").fill("2")
    expect(email).to_be_hidden()  # only for single keys
    [code] = issue_in_page(page, quantity=1, email="buyer@shop.example")
    expect(page.get_by_text("The key was e-mailed to buyer@shop.example.")).to_be_visible()
    assert len(mailoutbox) == 1 and code in mailoutbox[0].body and mailoutbox[0].to == ["buyer@shop.example"]


def test_int_keys_need_a_tier(page, live_server, reseller):
    log_in(page, live_server, reseller)
    nav(page, "Issue keys")
    form = page.locator("form.issue-form")
    expect(form.get_by_label("Tier")).to_be_hidden()
    form.get_by_label("Product").select_option(label="Integrations")
    expect(form.get_by_label("Tier")).to_be_visible()
    form.get_by_role("button", name="Issue keys").click()
    expect(page.get_by_text("Integrations keys need a tier")).to_be_visible()
    codes = issue_in_page(page, quantity=2, product="Integrations", tier="Scale")
    assert all(c.startswith("INT-") for c in codes) and key_of(codes[0]).tier == "scale"


def test_list_filter_search_and_paginate(page, live_server, reseller, issue, customer):
    alpha = issue(quantity=55, reference="Alpha shop")
    beta = issue(product="int", tier="growth", quantity=3, reference="Beta corp")
    assert activate(customer, alpha[0]).status_code == 201
    revoke_key(key=key_of(alpha[1]), reason="Cancelled order", actor=reseller.user)
    log_in(page, live_server, reseller)
    nav(page, "Keys")
    rows = page.locator("#keys-table tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text(hint_of(beta[-1]))  # newest first
    page.get_by_role("link", name="Older →").click()
    expect(rows).to_have_count(8)
    expect(page).to_have_url(re.compile(r"/partner/keys/\?cursor="))
    expect(page.get_by_role("link", name="Older →")).to_have_count(0)
    page.get_by_role("link", name="← Newest").click()
    expect(rows).to_have_count(50)

    page.get_by_label("Product").select_option(label="Integrations")
    expect(rows).to_have_count(3)
    expect(page).to_have_url(re.compile(r"product=int"))
    page.reload()  # the address bar kept the filter
    expect(rows).to_have_count(3)
    expect(page.get_by_label("Product")).to_have_value("int")
    page.get_by_label("Product").select_option(label="All")
    page.get_by_label("Status").select_option(label="Revoked")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(hint_of(alpha[1]))
    page.get_by_label("Status").select_option(label="Activated")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Shop One")
    page.get_by_label("Status").select_option(label="All")
    page.get_by_label("Search").fill("beta")
    expect(rows).to_have_count(3)
    page.get_by_label("Search").fill(alpha[7][-4:].lower())
    expect(rows.filter(has_text=hint_of(alpha[7]))).to_have_count(1)
    page.get_by_label("Search").fill("no such reference")
    expect(page.get_by_text("No key matches these filters.")).to_be_visible()
    page.get_by_label("Search").fill("")
    batch = key_of(beta[0]).batch
    page.get_by_label("Batch").select_option(value=str(batch.pk))
    expect(rows).to_have_count(3)
    _, export = download_text(page, lambda: page.get_by_test_id("export-link").click())
    lines = export.strip().splitlines()
    assert len(lines) == 4 and all("INT-" in line for line in lines[1:])


def test_lookup_a_key(page, live_server, reseller, issue):
    [code] = issue(reference="Desk 9")
    log_in(page, live_server, reseller)
    nav(page, "Lookup")
    field = page.get_by_label("Full key")
    field.fill(" " + code.lower().replace("-", " "))
    field.dispatch_event("input")
    expect(page.get_by_text(f"Looks right: {code}")).to_be_visible()
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("heading", name=hint_of(code))).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/partner/keys/{key_of(code).pk}/$"))
    assert code not in page.url and code not in page.content()
    nav(page, "Lookup")
    page.get_by_label("Full key").fill(generate_code("pos"))
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("alert")).to_contain_text("No such key among yours")


def test_revoke_a_key_with_a_reason(page, live_server, reseller, issue):
    [code] = issue()
    log_in(page, live_server, reseller)
    page.goto(f"{live_server.url}/partner/keys/{key_of(code).pk}/")
    page.get_by_role("button", name="Revoke key").click()
    dialog = page.get_by_role("dialog", name="Revoke key?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert key_of(code).status == "available"
    page.get_by_role("button", name="Revoke key").click()
    dialog.get_by_label("Reason").fill("Order cancelled by the buyer")
    dialog.get_by_role("button", name="Revoke", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="revoked: it can no longer be activated")).to_be_visible()
    expect(page.get_by_test_id("key-status")).to_have_text("Revoked")
    history = page.locator("tr[data-action='key.revoked']")
    expect(history).to_contain_text("Order cancelled by the buyer")
    expect(page.get_by_role("button", name="Revoke key")).to_have_count(0)
    assert key_of(code).revoked_reason == "Order cancelled by the buyer"


def test_an_activated_key_cannot_be_revoked(page, live_server, reseller, issue, customer):
    [code] = issue()
    log_in(page, live_server, reseller)
    page.goto(f"{live_server.url}/partner/keys/{key_of(code).pk}/")
    page.get_by_role("button", name="Revoke key").click()
    dialog = page.get_by_role("dialog", name="Revoke key?")
    dialog.get_by_label("Reason").fill("Changed my mind")
    # Meanwhile the customer activates it.
    assert activate(customer, code).status_code == 201
    dialog.get_by_role("button", name="Revoke", exact=True).click()
    expect(dialog.get_by_role("alert")).to_contain_text("This key has been activated and can no longer be revoked")
    assert key_of(code).status == "activated"
    dialog.get_by_role("link", name="Show the key's current state").click()
    expect(page.get_by_test_id("key-status")).to_have_text("Activated")
    expect(page.get_by_role("button", name="Revoke key")).to_have_count(0)
    expect(page.get_by_test_id("revoke-unavailable")).to_contain_text("An activated key cannot be revoked")


def test_dashboard_chart_and_api_tokens(page, live_server, reseller, issue, customer):
    codes = issue(quantity=4)
    for code in codes[:2]:
        assert activate(customer, code).status_code == 201
    log_in(page, live_server, reseller)
    expect(page.get_by_test_id("total-available")).to_have_text("2")
    expect(page.get_by_test_id("total-activated")).to_have_text("2")
    chart = page.get_by_role("img", name="Activations per day, last 90 days")
    expect(chart).to_be_visible()
    expect(page.locator("rect.chart-bar")).to_have_count(1)
    page.get_by_text("Show the numbers as a table").click()
    expect(page.locator(".chart-data tbody tr")).to_have_count(1)
    nav(page, "API tokens")
    page.get_by_label("Name").fill("Back office")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").inner_text()
    assert token.startswith("fbt_")
    nav(page, "API tokens")  # shown once: not on the next visit
    assert token not in page.content()
    page.get_by_role("button", name="Revoke token Back office").first.click()
    expect(page.get_by_text("Token “Back office” revoked.")).to_be_visible()


def test_the_partner_settings_page_changes_the_zone_of_the_key_pages(page: Page, live_server, reseller, issue):
    from fiscobridge.core.localtime import moment_text

    [code] = issue()
    key = key_of(code)
    log_in(page, live_server, reseller)
    page.goto(f"{live_server.url}/partner/keys/{key.pk}/")
    expect(page.locator("main")).to_contain_text(moment_text(key.created_at, "Pacific/Fiji"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_label("Time zone").select_option("Pacific/Apia")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Time zone set to Pacific/Apia.")).to_be_visible()
    page.goto(f"{live_server.url}/partner/keys/{key.pk}/")
    expect(page.locator("main")).to_contain_text(moment_text(key.created_at, "Pacific/Apia"))
    expect(page.locator("main")).to_contain_text("+13")


def test_a_large_batch_shows_its_progress_and_offers_the_codes_once(page, live_server, reseller):
    log_in(page, live_server, reseller)
    nav(page, "Issue keys")
    form = page.locator("form.issue-form")
    form.get_by_label("Number of keys").fill("1001")
    form.get_by_label("Reference").fill("Big order")
    form.get_by_role("button", name="Issue keys").click()
    # Queued: the progress bar, and no worker yet.
    expect(page.get_by_text("Waiting for a worker")).to_be_visible()
    expect(page.locator("progress.job-progress")).to_be_visible()
    run_tasks()  # the worker's turn; the page polls every second and sees the result
    job = IssueJob.objects.get()
    expect(page.get_by_role("heading", name=f"1001 keys issued in batch #{job.batch_id}")).to_be_visible()
    name, text = download_text(page, lambda: page.get_by_role("button", name="Download CSV").click())
    rows = list(csv.DictReader(text.splitlines()))
    assert name == f"fiscobridge-batch-{job.batch_id}-codes.csv" and len(rows) == 1001
    stored = set(ActivationKey.objects.filter(batch_id=job.batch_id).values_list("code_hmac", flat=True))
    assert {code_digest(r["code"]) for r in rows} == stored
    # The page learns of the download by itself, and offers nothing more.
    expect(page.get_by_text(re.compile("The codes were downloaded on"))).to_be_visible()
    expect(page.get_by_role("button", name="Download CSV")).to_have_count(0)
