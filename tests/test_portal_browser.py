"""The Client Portal in a real browser (Playwright + Debian's Chromium against live_server)."""

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from fiscobridge.keys.codes import generate_code
from tests.factories import PFX_PASSWORD, activate, assert_not_reloaded, grant, log_in, mark_page, new_pfx

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
VECTORS = json.loads((Path(__file__).parent / "key_vectors.json").read_text())


def test_login_shows_the_sidebar(page, live_server, customer):
    page.goto(f"{live_server.url}/pos/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/pos/"))
    page.get_by_label("Email").fill(customer.user.email)
    page.get_by_label("Password").fill("wrong-password-here")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    log_in(page, live_server, customer)
    nav = page.get_by_role("navigation", name="Main")
    for name in ["POS Manager", "Buy POS License", "Integrations", "Subscriptions", "Activity", "API tokens"]:
        expect(nav.get_by_role("link", name=name)).to_be_visible()


def test_activate_a_pos_key_end_to_end(page, live_server, customer, issue):
    [code] = issue(seats=3, months=12)
    log_in(page, live_server, customer)
    expect(page.get_by_test_id("seats-total")).to_have_text("0")
    mark_page(page)
    page.get_by_role("button", name="Upgrade Plan").click()
    modal = page.get_by_role("dialog", name="Upgrade Plan")
    purchase, activate_card = (
        modal.get_by_role("heading", name="Purchase Seats"),
        modal.get_by_role("heading", name="Activate Key"),
    )
    expect(purchase).to_be_visible()
    expect(activate_card).to_be_visible()
    # Side by side: the two cards' headings share a row.
    assert abs(purchase.bounding_box()["y"] - activate_card.bounding_box()["y"]) < 5
    expect(modal.get_by_text("Online purchase is not configured on this server.")).to_be_visible()
    modal.get_by_role("button", name="Activate Key").click()
    dialog = page.get_by_role("dialog", name="Activate Key")
    key_input = dialog.get_by_label("Activation key")
    key_input.press_sequentially(code.lower().replace("-", " ")[:10])
    expect(dialog.get_by_text(re.compile(r"of 12 characters"))).to_be_visible()
    key_input.fill(code.lower().replace("-", " "))
    key_input.dispatch_event("input")
    expect(dialog.get_by_text(f"Looks right: {code}")).to_be_visible()
    dialog.get_by_role("button", name="Validate").click()
    details = dialog.locator("dl.details")
    expect(details).to_contain_text("Cloud POS")
    expect(details).to_contain_text("12 months")
    expect(details).to_contain_text(f"POS-••••-••••-{code[-4:]}")
    dialog.get_by_role("button", name="Activate").click()
    expect(dialog.get_by_text("Key activated.")).to_be_visible()
    expect(page.get_by_test_id("seats-total")).to_have_text("3")
    expect(page.get_by_test_id("seats-available")).to_have_text("3")
    assert_not_reloaded(page)
    dialog.get_by_role("button", name="Done").click()
    expect(dialog).to_be_hidden()


def test_activate_an_int_key_from_the_integrations_banner(page, live_server, customer, issue):
    [code] = issue(product="int", tier="growth", seats=2)
    log_in(page, live_server, customer)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Integrations").click()
    expect(page.get_by_text("Have a reseller key instead?")).to_be_visible()
    expect(page.get_by_test_id("total-trial")).to_have_text("1")
    mark_page(page)
    page.locator(".banner").get_by_role("button", name="Activate Key").click()
    dialog = page.get_by_role("dialog", name="Activate Key")
    dialog.get_by_label("Activation key").fill(code[4:])  # no prefix: the page's product is assumed
    dialog.get_by_role("button", name="Validate").click()
    expect(dialog.locator("dl.details")).to_contain_text("Growth")
    dialog.get_by_role("button", name="Activate").click()
    expect(dialog.get_by_text("Key activated.")).to_be_visible()
    expect(page.get_by_test_id("total-growth")).to_have_text("2")
    assert_not_reloaded(page)


def open_activate_dialog(page):
    page.get_by_role("button", name="Upgrade Plan").click()
    page.get_by_role("dialog", name="Upgrade Plan").get_by_role("button", name="Activate Key").click()
    return page.get_by_role("dialog", name="Activate Key")


def validate(dialog, text):
    dialog.get_by_label("Activation key").fill(text)
    dialog.get_by_role("button", name="Validate").click()


def test_invalid_key_shows_the_message_and_hints(page, live_server, customer, issue):
    [code] = issue()
    log_in(page, live_server, customer)
    dialog = open_activate_dialog(page)
    validate(dialog, "POS-ABCD-EF")
    alert = dialog.get_by_role("alert")
    expect(alert).to_contain_text("Invalid key format")
    expect(alert).to_contain_text("POS-XXXX-XXXX-XXXX")
    expect(alert).to_contain_text("digits 2–9 only")
    typo = code[:-1] + ("2" if code[-1] != "2" else "3")
    dialog.get_by_label("Activation key").fill(typo)
    dialog.get_by_label("Activation key").dispatch_event("input")
    expect(dialog.get_by_text("One character looks mistyped")).to_be_visible()
    dialog.get_by_role("button", name="Validate").click()
    expect(dialog.get_by_role("alert")).to_contain_text("One character looks mistyped")


def test_wrong_product_key_names_its_page(page, live_server, customer, issue):
    [int_code] = issue(product="int", tier="starter")
    log_in(page, live_server, customer)
    dialog = open_activate_dialog(page)
    validate(dialog, int_code)
    expect(dialog.get_by_role("alert")).to_contain_text(
        "This is an Integrations key (INT-). Redeem it on the Integrations page."
    )


def test_lockout_tells_when_to_try_again(page, live_server, customer):
    log_in(page, live_server, customer)
    dialog = open_activate_dialog(page)
    for _ in range(5):
        validate(dialog, generate_code("pos"))
        expect(dialog.get_by_role("alert")).to_contain_text("This activation key is not available")
    validate(dialog, generate_code("pos"))
    alert = dialog.get_by_role("alert")
    expect(alert).to_contain_text("Too many failed attempts")
    expect(alert).to_contain_text("You can try again in 15 minutes.")


def test_upload_and_revoke_a_certificate(page, live_server, customer, issue, tmp_path):
    grant(customer, issue, seats=1)
    pfx = tmp_path / "store.pfx"
    pfx.write_bytes(new_pfx(org="Tienda Norte SA", unit="Caja 3"))
    log_in(page, live_server, customer)
    mark_page(page)
    page.get_by_role("button", name="Upload Certificate").click()
    dialog = page.get_by_role("dialog", name="Upload Certificate")
    dialog.get_by_label("Certificate file").set_input_files(str(pfx))
    dialog.get_by_label("Certificate password").fill("wrong password")
    dialog.get_by_role("button", name="Upload").click()
    expect(dialog.get_by_role("alert")).to_be_visible()
    dialog.get_by_label("Certificate password").fill(PFX_PASSWORD)
    dialog.get_by_role("button", name="Upload").click()
    expect(dialog.get_by_text("Certificate uploaded")).to_be_visible()
    dialog.get_by_role("button", name="Done").click()
    row = page.locator("#certificates tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Tienda Norte SA")
    expect(row).to_contain_text("Caja 3")
    expect(page.get_by_test_id("seats-used")).to_have_text("1")
    # At the limit the upload button is disabled, with the reason.
    expect(page.get_by_role("button", name="Upload Certificate")).to_be_disabled()
    expect(page.get_by_text("All your seats are in use.")).to_be_visible()
    row.get_by_role("button", name="Revoke").click()
    confirm = page.get_by_role("dialog", name="Revoke certificate?")
    expect(confirm).to_contain_text("cannot be undone")
    confirm.get_by_role("button", name="Revoke").click()
    expect(confirm.get_by_text("revoked. Its seat is free.")).to_be_visible()
    confirm.get_by_role("button", name="Done").click()
    expect(page.get_by_test_id("seats-used")).to_have_text("0")
    expect(page.locator("#certificates tbody tr")).to_contain_text("Revoked")
    assert_not_reloaded(page)


def test_create_and_remove_a_connection(page, live_server, customer):
    log_in(page, live_server, customer)
    page.goto(f"{live_server.url}/integrations/")
    page.get_by_role("button", name="New connection").click()
    dialog = page.get_by_role("dialog", name="New connection")
    dialog.get_by_label("Name").fill("Main books")
    dialog.get_by_label("Type").select_option("xero")
    dialog.get_by_label("Tier").select_option("trial")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog.get_by_text("Connection “Main books” created")).to_be_visible()
    dialog.get_by_role("button", name="Done").click()
    expect(page.locator("#connections tbody tr")).to_contain_text("Main books")
    expect(page.get_by_test_id("used-trial")).to_have_text("1")
    page.locator("#connections").get_by_role("button", name="Remove").click()
    confirm = page.get_by_role("dialog", name="Remove connection?")
    confirm.get_by_role("button", name="Remove").click()
    expect(confirm.get_by_text("removed. Its seat is free.")).to_be_visible()
    confirm.get_by_role("button", name="Done").click()
    expect(page.get_by_test_id("used-trial")).to_have_text("0")
    expect(page.get_by_text("No connections yet.")).to_be_visible()


def test_subscriptions_page_rows(page, live_server, customer, issue):
    grant(customer, issue, seats=4)
    [int_code] = issue(product="int", tier="scale", seats=2)
    activate(customer, int_code, "int")
    log_in(page, live_server, customer)
    page.get_by_role("link", name="Subscriptions").click()
    pos_panel = page.get_by_role("region", name="Cloud POS")
    pos_row = pos_panel.locator("tbody tr")
    expect(pos_row).to_have_count(1)
    expect(pos_row).to_contain_text("4")
    expect(pos_row).to_contain_text("Activation key")
    expect(pos_row).to_contain_text("POS-••••-••••-")
    expect(pos_row).to_contain_text("0 / 4")
    int_row = page.get_by_role("region", name="Integrations").locator("tbody tr")
    expect(int_row).to_contain_text("Scale")
    expect(int_row).to_contain_text("0 / 2")


def test_subscriptions_empty_state_has_a_call_to_action(page, live_server, customer):
    log_in(page, live_server, customer)
    page.get_by_role("link", name="Subscriptions").click()
    page.get_by_role("region", name="Cloud POS").get_by_role("link", name="Activate a key or buy seats").click()
    expect(page.get_by_role("dialog", name="Upgrade Plan")).to_be_visible()


def test_keyboard_only_activation(page, live_server, customer, issue):
    [code] = issue(seats=2)
    log_in(page, live_server, customer)
    page.get_by_role("button", name="Upgrade Plan").focus()
    page.keyboard.press("Enter")
    modal = page.get_by_role("dialog", name="Upgrade Plan")
    expect(modal).to_be_visible()
    for _ in range(6):  # Tab through the modal until the Activate Key card button has focus
        if page.evaluate("document.activeElement.textContent.trim()") == "Activate Key":
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Activate Key")
    expect(dialog.get_by_label("Activation key")).to_be_focused()
    page.keyboard.type(code)
    page.keyboard.press("Enter")  # submits Validate
    activate = dialog.get_by_role("button", name="Activate")
    expect(activate).to_be_focused()
    page.keyboard.press("Enter")
    done = dialog.get_by_role("button", name="Done")
    expect(done).to_be_focused()
    expect(page.get_by_test_id("seats-total")).to_have_text("2")
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Upgrade Plan")).to_be_focused()


def test_escape_closes_the_dialog(page, live_server, customer):
    log_in(page, live_server, customer)
    open_activate_dialog(page)
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Activate Key")).to_be_hidden()


def test_the_browser_check_agrees_with_python_on_every_vector(page, live_server, db):
    page.goto(f"{live_server.url}/login/")
    results = page.evaluate("vectors => vectors.map(v => FiscoKey.parse(v.input, v.page))", VECTORS)
    for vector, result in zip(VECTORS, results, strict=True):
        if vector["valid"]:
            assert result == {"ok": True, "product": result["product"], "canonical": vector["canonical"]}, vector
        else:
            assert result == {"ok": False, "problem": vector["problem"]}, vector
    # And on freshly generated keys and their single-character typos.
    from fiscobridge.keys.codes import ALPHABET, is_valid_body

    samples = [generate_code("pos") for _ in range(50)]
    typos = [s[:-1] + ALPHABET[(ALPHABET.index(s[-1]) + 5) % 34] for s in samples]
    js = page.evaluate("codes => codes.map(c => FiscoKey.isValidBody(c.replace(/-/g, '').slice(3)))", samples + typos)
    py = [is_valid_body(c.replace("-", "")[3:]) for c in samples + typos]
    assert js == py and py[:50] == [True] * 50 and py[50:] == [False] * 50


def test_changing_the_time_zone_on_the_settings_page_changes_the_dates_shown(page, live_server, customer):
    from fiscobridge.audit.models import Event
    from fiscobridge.core.localtime import moment_text

    log_in(page, live_server, customer)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    select = page.get_by_label("Time zone")
    expect(select).to_have_value("Pacific/Fiji")
    login = Event.objects.filter(account=customer.account).order_by("-at").first()
    page.goto(f"{live_server.url}/activity/")
    expect(page.locator("main")).to_contain_text(moment_text(login.at, "Pacific/Fiji"))

    page.goto(f"{live_server.url}/settings/")
    page.get_by_label("Time zone").select_option("Pacific/Efate")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Time zone set to Pacific/Efate.")).to_be_visible()
    expect(page.get_by_test_id("now-local")).to_contain_text("+11")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Activity").click()
    main = page.locator("main")
    expect(main).to_contain_text(moment_text(login.at, "Pacific/Efate"))
    expect(main).not_to_contain_text(moment_text(login.at, "Pacific/Fiji"))
