"""Client Portal pages and fragments: owner, another account, a partner and anonymous."""

import pytest
from django.test import Client

from fiscobridge.audit.models import Event
from fiscobridge.keys.codes import generate_code
from tests.factories import PASSWORD, browser_for, redeem, run_tasks

PAGES = [
    "/pos/",
    "/pos/seats/",
    "/pos/certificates/",
    "/pos/buy/",
    "/integrations/",
    "/integrations/usage/",
    "/billing/subscriptions/",
    "/activity/",
    "/tokens/",
]
POSTS = [
    "/pos/certificates/upload/",
    "/pos/certificates/revoke/",
    "/integrations/connections/",
    "/integrations/connections/remove/",
    "/keys/validate/",
    "/keys/activate/",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_its_owner(customer, path):
    response = browser_for(customer).get(path)
    assert response.status_code == 200
    assert b"<html" in response.content or path.count("/") > 2


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_is_sent_to_login(anonymous, path):
    response = anonymous.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("path", POSTS)
def test_anonymous_htmx_posts_redirect_to_login(anonymous, path):
    response = anonymous.post(path, {}, HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Redirect"] == "/login/"


@pytest.mark.parametrize("path", PAGES)
def test_partners_and_staff_are_not_customers(reseller, staff, path):
    for persona in (reseller, staff):
        response = browser_for(persona).get(path)
        assert response.status_code == 403
        assert b"This is the Client Portal" in response.content


def test_another_accounts_connection_is_not_found(customer, outsider):
    from fiscobridge.integrations.services import create_connection

    connection = create_connection(
        account=customer.account, actor=customer.user, type="xero", tier="trial", name="Books"
    )
    response = browser_for(outsider).post("/integrations/connections/remove/", {"uid": connection.uid})
    assert response.status_code == 404
    connection.refresh_from_db()
    assert connection.status == "active"
    assert browser_for(outsider).post("/pos/certificates/revoke/", {"uid": "C-nope"}).status_code == 404
    mine = browser_for(customer).post("/integrations/connections/remove/", {"uid": connection.uid})
    assert mine.status_code == 200 and b"removed" in mine.content


def test_login_page_logs_in_and_lands_on_pos_manager(customer):
    client = Client()
    page = client.get("/login/")
    assert page.status_code == 200 and b"Log in to FiscoBridge" in page.content
    response = client.post("/login/", {"username": customer.user.email, "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == "/pos/"
    assert b"POS Manager" in response.content
    assert Event.objects.filter(action="login.succeeded", actor=customer.user).exists()


def test_wrong_password_shows_an_error(customer):
    response = Client().post("/login/", {"username": customer.user.email, "password": "not the password"})
    assert response.status_code == 200 and b'role="alert"' in response.content


def test_password_reset_sends_a_working_link(customer, mailoutbox):
    client = Client()
    client.post("/password_reset/", {"email": customer.user.email})
    assert mailoutbox == []  # the worker sends it, not the request
    run_tasks()
    assert len(mailoutbox) == 1
    link = next(line for line in mailoutbox[0].body.splitlines() if "/reset/" in line).strip()
    path = "/reset/" + link.split("/reset/", 1)[1]
    form = client.get(path, follow=True)
    assert b"Set a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-pass-42", "new_password2": "a-brand-new-pass-42"},
        follow=True,
    )
    assert b"Password saved" in done.content
    relog = Client().post("/login/", {"username": customer.user.email, "password": "a-brand-new-pass-42"})
    assert relog.status_code == 302


def test_logout_is_a_post(customer):
    client = browser_for(customer)
    assert client.post("/logout/").status_code == 302
    assert client.get("/pos/").status_code == 302


def test_validate_and_activate_fragments(customer, issue):
    [code] = issue(seats=3)
    client = browser_for(customer)
    review = client.post("/keys/validate/", {"key": code.lower(), "product": "pos"})
    assert b"Package details" in review.content and b"3" in review.content
    assert code.encode() not in review.content  # the key is not echoed back into the page
    done = client.post("/keys/activate/", {"key": code, "product": "pos"})
    assert b"Key activated" in done.content and done["HX-Trigger"] == "seats-changed"
    again = client.post("/keys/activate/", {"key": code, "product": "pos"})
    assert b"This key is already active on your account" in again.content


def test_fragments_show_spec_messages(customer, issue):
    [int_code] = issue(product="int", tier="starter")
    client = browser_for(customer)
    bad = client.post("/keys/validate/", {"key": "POS-12", "product": "pos"})
    assert b"Invalid key format" in bad.content and b"POS-XXXX-XXXX-XXXX" in bad.content
    wrong = client.post("/keys/validate/", {"key": int_code, "product": "pos"})
    assert b"This is an Integrations key (INT-). Redeem it on the Integrations page." in wrong.content
    for _ in range(5):
        client.post("/keys/activate/", {"key": generate_code("pos"), "product": "pos"})
    locked = client.post("/keys/activate/", {"key": generate_code("pos"), "product": "pos"})
    assert b"Too many failed attempts" in locked.content and b"try again in 15 minutes" in locked.content


def test_api_tokens_page_shows_a_new_token_once_and_revokes(customer):
    client = browser_for(customer)
    created = client.post("/tokens/", {"name": "Warehouse", "scopes": "all"})  # full access: the form's default
    text = created.content.decode()
    assert "shown only once" in text and "fbt_" in text
    again = client.get("/tokens/").content.decode()
    token_line = text.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert token_line not in again
    from fiscobridge.accounts.models import ApiToken

    token = ApiToken.objects.get(name="Warehouse")
    assert Client(HTTP_AUTHORIZATION=f"Bearer {token_line}").get("/api/v1/subscriptions").status_code == 200
    client.post(f"/tokens/{token.pk}/revoke/")
    assert Client(HTTP_AUTHORIZATION=f"Bearer {token_line}").get("/api/v1/subscriptions").status_code == 401


def test_another_users_token_cannot_be_revoked(customer, teammate):
    from fiscobridge.accounts.models import ApiToken

    theirs = ApiToken.objects.filter(user=teammate.user).first()
    assert browser_for(customer).post(f"/tokens/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_activity_lists_only_the_accounts_events(customer, outsider, issue):
    [code] = issue()
    browser_for(customer).post("/keys/activate/", {"key": code, "product": "pos"})
    mine = browser_for(customer).get("/activity/").content.decode()
    assert "Key activated" in mine
    theirs = browser_for(outsider).get("/activity/").content.decode()
    assert "Key activated" not in theirs


def test_unknown_page_is_a_friendly_404(customer):
    response = browser_for(customer).get("/no-such-page/")
    assert response.status_code == 404 and b"find that page" in response.content


def test_upload_page_refuses_a_file_over_one_megabyte(customer, issue):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from fiscobridge.pos.models import Certificate

    [code] = issue(seats=1)
    redeem(customer, code)
    big = SimpleUploadedFile("big.pfx", b"\x30" * (1024 * 1024 + 10), "application/x-pkcs12")
    response = browser_for(customer).post("/pos/certificates/upload/", {"file": big, "password": "x"})
    assert b"larger than 1 MB" in response.content and b'data-error-code="certificate_too_large"' in response.content
    assert not Certificate.objects.exists()


def test_activity_shows_staff_as_fiscobridge_without_their_address(customer, staff, issue):
    from fiscobridge.keys.models import ActivationKey
    from fiscobridge.keys.services import void_key

    [code] = issue()
    browser_for(customer).post("/keys/activate/", {"key": code, "product": "pos"})
    void_key(key=ActivationKey.objects.get(), reason="chargeback", actor=staff.user, ip="198.51.100.77")
    page = browser_for(customer).get("/activity/").content.decode()
    assert "Key voided by FiscoBridge" in page
    assert staff.user.email not in page and "198.51.100.77" not in page


def test_odd_digits_in_form_fields_are_not_a_server_error(customer, reseller, issue):
    [code] = issue()
    response = browser_for(customer).post("/keys/activate/", {"key": code, "product": "pos", "renew": "²"})
    assert response.status_code == 200 and b"Key activated" in response.content
    assert browser_for(reseller).get("/partner/keys/", {"batch": "²"}).status_code == 200
    assert browser_for(customer).post("/pos/certificates/revoke/", {"uid": "\x00"}).status_code == 404
