"""Two-factor sign-in in a real browser: set up an authenticator from the page, sign out, sign
in with a code the test computes like a phone would, and with a recovery code."""

import re
from base64 import b32decode

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import Page, expect

from fiscobridge.accounts.services import create_partner
from fiscobridge.audit.models import Event
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def phone_code(secret_text: str, *, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for the key typed from the page."""
    secret = secret_text.replace(" ", "")
    key = b32decode(secret + "=" * (-len(secret) % 8))
    return f"{TOTP(key, step=30, t0=0, digits=6, drift=steps_ahead).token():06d}"


def password_step(page: Page, live_server, email: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to FiscoBridge")).to_be_visible()


def test_set_up_then_sign_in_with_a_code_and_with_a_recovery_code(page, live_server):
    user = create_partner(name="Strict Reseller", email="sales@strict.example", password=PASSWORD)

    # A new partner requires it: right after the password, the set-up page and nothing else.
    password_step(page, live_server, user.email)
    expect(page).to_have_url(re.compile(r"/account/two-factor/$"))
    expect(page.get_by_text("Two-factor sign-in is required for your account")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Keys", exact=True).click()
    expect(page).to_have_url(re.compile(r"/account/two-factor/$"))  # still here
    page.get_by_role("button", name="Set up authenticator app").click()
    expect(page.get_by_role("img", name="QR code to scan")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{1,4})+", secret)

    # A wrong code is a form error, not a failure page.
    page.get_by_label("6-digit code").fill("000000")
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    page.wait_for_timeout(1100)  # django-otp's wait after one wrong code
    page.get_by_label("6-digit code").fill(phone_code(secret))
    page.get_by_role("button", name="Turn on").click()
    recovery_codes = page.get_by_test_id("recovery-codes").locator("li")
    expect(recovery_codes).to_have_count(10)  # the page after "Turn on" has loaded
    codes = recovery_codes.all_inner_texts()
    assert all(re.fullmatch(r"[a-z2-7]{5}-[a-z2-7]{5}", c) for c in codes)
    page.get_by_role("link", name="I saved my codes, continue").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    log_out(page)

    # The password alone no longer signs in; the code from the phone does.
    password_step(page, live_server, user.email)
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    page.get_by_label("Code").fill("123456")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    page.wait_for_timeout(1100)
    page.get_by_label("Code").fill(phone_code(secret, steps_ahead=1))  # the set-up used this step's code
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    log_out(page)

    # A recovery code instead of the phone: it works once.
    password_step(page, live_server, user.email)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    assert Event.objects.filter(action="two_factor.recovery_code_used", actor=user).count() == 1
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Two-factor sign-in").click()
    expect(page.get_by_test_id("codes-left")).to_have_text("9")
    expect(page.get_by_role("button", name="Turn off")).to_have_count(0)  # required for this partner
    log_out(page)
    password_step(page, live_server, user.email)
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right")
