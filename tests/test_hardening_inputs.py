"""Every bad input is a 4xx with the error body (issue 10.4), and one client-IP rule for login
lockouts and key limits (issue 10.6). Each case here was a 500, or a wrong answer, in a probe."""

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django_tasks_db.models import DBTaskResult

from fiscobridge.accounts.models import ApiToken
from fiscobridge.keys.models import ActivationKey
from fiscobridge.pos.models import Certificate
from tests.factories import (
    CERTIFICATES,
    PASSWORD,
    PFX_PASSWORD,
    assert_error,
    browser_for,
    grant,
    new_pfx,
    run_tasks,
    upload_pfx,
)

VALIDATE = "/api/v1/keys/validate"
PARTNER_KEYS = "/api/v1/partner/keys"
NUL = "\x00"


# --- NUL bytes (PostgreSQL refuses them in text) ---------------------------------------------------


@pytest.mark.parametrize("url", ["/tokens/", "/partner/tokens/"])
def test_nul_in_a_token_name_is_a_message_not_a_500(customer, reseller, url):
    user = reseller if url.startswith("/partner") else customer
    before = ApiToken.objects.count()
    response = browser_for(user).post(url, {"name": f"till{NUL}1", "scopes": "all"})
    assert response.status_code == 422  # the form again, with the reason and what was typed
    assert "must not contain control characters" in response.content.decode()
    assert ApiToken.objects.count() == before


def test_nul_in_a_certificate_password_is_a_wrong_password(customer, issue):
    grant(customer, issue, seats=1)
    assert_error(upload_pfx(customer, new_pfx(), password=f"a{NUL}b"), 400, "wrong_certificate_password")
    assert not Certificate.objects.exists()


def test_control_characters_in_a_certificate_subject_become_spaces(customer, issue):
    grant(customer, issue, seats=1)
    response = upload_pfx(customer, new_pfx(org=f"Bad{NUL}Org\tSA"))
    assert response.status_code == 201, response.content
    assert response.json()["taxpayer"] == "Bad Org SA"


def test_nul_in_a_session_cookie_is_an_anonymous_visitor(db):
    visitor = Client()
    visitor.cookies["sessionid"] = f"abc{NUL}def"
    assert visitor.get("/pos/").status_code == 302  # to the login page


# --- out-of-range values -------------------------------------------------------------------------


@pytest.mark.parametrize("redeem_by", ["9999-12-31", "9999-12-31T23:59:59Z", "2999-01-01"])
def test_a_redeem_by_date_far_out_is_refused(reseller, redeem_by):
    body = {"product": "pos", "seats": 1, "months": 1, "quantity": 1, "redeem_by": redeem_by}
    assert_error(reseller.client.post(PARTNER_KEYS, body, content_type="application/json"), 422)


@pytest.mark.parametrize("day", ["9999-12-31", "2999-01-01"])
def test_a_redeem_by_date_far_out_is_a_form_error_on_the_issue_page(reseller, day):
    browser = browser_for(reseller)
    nonce = re.search(r'name="nonce" value="([^"]+)"', browser.get("/partner/issue/").content.decode()).group(1)
    fields = {"product": "pos", "seats": 1, "months": 1, "quantity": 1, "redeem_by": day, "nonce": nonce}
    page = browser.post("/partner/issue/", fields)
    assert page.status_code == 200
    assert "Redeem-by must be within 100 years" in page.content.decode()
    assert not ActivationKey.objects.exists()


def test_a_4300_digit_renew_is_a_422(customer, code):
    body = {"key": code, "product": "pos", "renew": "9" * 4300}
    assert_error(customer.client.post("/api/v1/keys/activate", body, content_type="application/json"), 422)


def test_a_multipart_body_without_boundary_is_a_400(customer):
    response = customer.client.post(CERTIFICATES, data=b"xx", content_type="multipart/form-data")
    assert_error(response, 400, "bad_request")


@pytest.mark.parametrize("username", ["u" * 256 + "@x.example", f"u{NUL}@x.example"])
def test_a_login_with_an_impossible_username_is_a_failed_login(db, username):
    response = Client().post("/login/", {"username": username, "password": "x"})
    assert response.status_code == 200
    assert response.context["form"].errors  # a failed login, shown on the form
    assert "_auth_user_id" not in Client().session


# --- full keys stay out of URLs -----------------------------------------------------------------------


def test_a_full_key_in_the_api_search_is_refused(reseller, issue):
    [code] = issue()
    error = assert_error(reseller.client.get(PARTNER_KEYS, {"q": code.lower().replace("-", "")}), 422, "key_in_query")
    assert "lookup" in error["message"]
    assert reseller.client.get(PARTNER_KEYS, {"q": code[-4:]}).json()["items"][0]["hint"].endswith(code[-4:])


@pytest.mark.parametrize("url", ["/partner/keys/", "/partner/keys/table/"])
def test_a_full_key_in_the_keys_page_address_is_replaced_by_its_last_group(reseller, issue, url):
    [code] = issue()
    browser = browser_for(reseller)
    response = browser.get(url, {"q": code, "status": "available"})
    assert response.status_code == 302
    assert response["Location"] == f"{url}?status=available&q={code[-4:]}"
    assert code not in response["Location"]
    page = browser.get(response["Location"].replace("table/", ""))
    assert "A full key never goes in an address" in page.content.decode()


# --- what the API accepts ---------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/x-www-form-urlencoded"])
def test_the_api_wants_json_bodies(customer, content_type):
    response = customer.client.generic(
        "POST", VALIDATE, b'{"key": "POS-2345-6789-ABCD", "product": "pos"}', content_type=content_type
    )
    error = assert_error(response, 415, "unsupported_media_type")
    assert error["details"] == {"expected": "application/json"}


def test_a_certificate_upload_wants_multipart(customer):
    response = customer.client.post(CERTIFICATES, {"password": PFX_PASSWORD}, content_type="application/json")
    assert_error(response, 415, "unsupported_media_type")


def test_an_anonymous_api_write_is_401_not_a_csrf_403(db):
    anonymous = Client(enforce_csrf_checks=True)
    response = anonymous.post(
        VALIDATE, {"key": "POS-2345-6789-ABCD", "product": "pos"}, content_type="application/json"
    )
    assert_error(response, 401, "unauthenticated")


def test_a_signed_in_browser_still_needs_its_csrf_token(customer):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(customer.user)
    response = browser.post(VALIDATE, {"key": "POS-2345-6789-ABCD", "product": "pos"}, content_type="application/json")
    assert_error(response, 403, "forbidden")


# --- one client-IP rule (core.net.client_ip) behind a trusted proxy -------------------------------------


def _login(client: Client, email: str, password: str, **meta):
    return client.post("/login/", {"username": email, "password": password}, **meta)


def test_an_attacker_cannot_lock_out_a_user_at_another_address(customer, settings):
    settings.FISCOBRIDGE_TRUSTED_PROXY_COUNT = 1
    email = customer.user.email
    # Behind one proxy every connection comes from the proxy's address: X-Forwarded-For says who.
    for _ in range(django_settings.AXES_FAILURE_LIMIT + 1):
        _login(Client(), email, "wrong", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.66")
    locked = _login(Client(), email, "wrong", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.66")
    assert locked.status_code == 429
    owner = _login(Client(), email, PASSWORD, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert owner.status_code == 302, owner.status_code


def test_rotating_forwarded_for_does_not_escape_the_login_lockout(customer, settings):
    settings.FISCOBRIDGE_TRUSTED_PROXY_COUNT = 1
    email = customer.user.email
    # The client-supplied entries are left of the proxy's own: rotating them changes nothing.
    for index in range(django_settings.AXES_FAILURE_LIMIT):
        forwarded = f"192.0.2.{index}, 203.0.113.66"
        _login(Client(), email, "wrong", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    response = _login(Client(), email, "wrong", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.66")
    assert response.status_code == 429


# --- password reset: throttled, the same for every address, sent by the worker --------------------


def _reset(email: str, ip: str = "198.51.100.1"):
    return Client().post("/password_reset/", {"email": email}, REMOTE_ADDR=ip)


def test_a_reset_request_answers_alike_whether_the_address_exists_or_not(customer, mailoutbox):
    known, unknown = _reset(customer.user.email), _reset("nobody@nowhere.example")
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == "/password_reset/done/"
    # The same work in the request: one task each, looked up and sent (or not) by the worker.
    assert DBTaskResult.objects.filter(task_path__endswith="send_password_reset").count() == 2
    assert mailoutbox == []
    run_tasks()
    assert [m.to for m in mailoutbox] == [[customer.user.email]]
    assert "http://127.0.0.1:8000/reset/" in mailoutbox[0].body  # PUBLIC_BASE_URL, never the Host header


def test_reset_requests_are_throttled_per_email_and_per_address(customer, settings, mailoutbox):
    settings.PASSWORD_RESET_PER_EMAIL_PER_HOUR, settings.PASSWORD_RESET_PER_IP_PER_HOUR = 2, 4
    email = customer.user.email
    assert [_reset(email, f"198.51.100.{n}").status_code for n in range(3)] == [302, 302, 429]
    # Another e-mail from one address: the address's own limit.
    answers = [_reset(f"someone{n}@example.com", "203.0.113.5").status_code for n in range(5)]
    assert answers == [302, 302, 302, 302, 429]
    throttled = _reset("other@example.com", "203.0.113.5")
    assert "Too many reset requests" in throttled.content.decode()
    run_tasks()
    assert len(mailoutbox) == 2  # the two allowed requests for the real address


def test_production_refuses_the_console_mail_backend(tmp_path):
    env = {
        **os.environ,
        "FISCOBRIDGE_ENV": "production",
        "DJANGO_SECRET_KEY": "x" * 50,
        "FISCOBRIDGE_KEY_SECRET": "y" * 50,
        "FISCOBRIDGE_ENCRYPTION_KEY": "z" * 50,
        "ALLOWED_HOSTS": "example.com",
        "FISCOBRIDGE_DATA_DIR": str(tmp_path),
    }
    for name in ("EMAIL_HOST", "EMAIL_BACKEND"):
        env.pop(name, None)
    probe = [
        sys.executable,
        "-c",
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='fiscobridge.settings'; django.setup()",
    ]
    result = subprocess.run(probe, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "needs a real mail server" in result.stderr
    smtp = subprocess.run(
        probe, env={**env, "EMAIL_HOST": "smtp.example.com"}, capture_output=True, text=True, timeout=60
    )
    assert smtp.returncode == 0, smtp.stderr[-2000:]
