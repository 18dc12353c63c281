"""Staff admin (void through the service, never a code on a page) and API tokens."""

from datetime import timedelta

import time_machine
from django.test import Client

from fiscobridge.accounts.models import ApiToken
from fiscobridge.accounts.services import authenticate_api_token, create_api_token, revoke_api_token
from fiscobridge.accounts.two_factor import confirmed_authenticator
from fiscobridge.audit.models import Event
from fiscobridge.keys.models import ActivationKey
from tests.factories import PASSWORD, browser_for, post_json, totp_code


def test_admin_void_action_goes_through_the_service(staff, customer, issue):
    [code] = issue()
    post_json(customer.client, "/api/v1/keys/activate", {"key": code, "product": "pos"})
    key = ActivationKey.objects.get()
    selection = {"action": "void_selected", "_selected_action": [key.pk]}
    client = browser_for(staff)
    confirm = client.post("/admin/keys/activationkey/", selection)  # step 1: the confirmation page
    assert confirm.status_code == 200 and b'name="reason"' in confirm.content
    key.refresh_from_db()
    assert key.voided_at is None
    response = client.post(
        "/admin/keys/activationkey/", {**selection, "confirm": "yes", "reason": "chargeback"}, follow=True
    )
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.voided_at is not None
    assert Event.objects.filter(action="key.voided", actor=staff.user).exists()
    assert Event.objects.filter(action="subscription.ended").exists()
    assert customer.client.get("/api/v1/subscriptions").json()["pos"]["seats_total"] == 0


def test_admin_pages_never_show_a_code(staff, issue):
    codes = issue(quantity=3)
    client = browser_for(staff)
    pages = [client.get("/admin/keys/activationkey/"), client.get("/admin/keys/keybatch/")]
    pages += [client.get(f"/admin/keys/activationkey/{k.pk}/change/") for k in ActivationKey.objects.all()]
    for page in pages:
        assert page.status_code == 200
        text = page.content.decode()
        for code in codes:
            assert code not in text and code[4:] not in text
        assert not any(k.code_hmac in text for k in ActivationKey.objects.all())


def test_admin_is_for_staff_only(customer, reseller):
    for persona in (customer, reseller):
        client = Client()
        client.force_login(persona.user)
        response = client.get("/admin/keys/activationkey/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_token_is_shown_once_and_stored_as_prefix_and_hmac(customer):
    issued = create_api_token(user=customer.user, name="laptop")
    stored = ApiToken.objects.get(pk=issued.token.pk)
    secret = issued.plain.split("_", 2)[2]
    assert issued.plain.startswith(f"fbt_{stored.prefix}_")
    assert secret not in stored.digest and len(stored.digest) == 64
    assert authenticate_api_token(issued.plain) == stored
    assert authenticate_api_token(issued.plain + "x") is None
    assert authenticate_api_token(issued.plain.replace(stored.prefix, "000000000000")) is None


def test_token_last_used_is_recorded_and_revocation_is_immediate(customer):
    issued = create_api_token(user=customer.user)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issued.plain}")
    with time_machine.travel("2027-05-01 10:00:00Z", tick=False) as clock:
        assert client.get("/api/v1/subscriptions").status_code == 200
        issued.token.refresh_from_db()
        assert issued.token.last_used_at.isoformat().startswith("2027-05-01T10:00:00")
        clock.shift(timedelta(minutes=5))
        revoke_api_token(token=issued.token, actor=customer.user)
        response = client.get("/api/v1/subscriptions")
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"


def test_logins_are_audited(customer, staff):
    # Through the login form (django-axes needs the request), as a person would.
    wrong = Client().post("/admin/login/", {"username": customer.user.email, "password": "wrong password"})
    assert wrong.status_code == 200  # the form again, with its error
    # Staff sign in with two steps: the password, then a code from their authenticator.
    staff_browser = Client()
    password_step = staff_browser.post("/admin/login/", {"username": staff.user.email, "password": PASSWORD})
    assert password_step.status_code == 302 and password_step["Location"] == "/login/verify/"
    assert not Event.objects.filter(action="login.succeeded", actor=staff.user).exists()
    device = confirmed_authenticator(staff.user)
    ok = staff_browser.post("/login/verify/", {"code": totp_code(device, steps_ahead=1)})
    assert ok.status_code == 302
    assert Event.objects.filter(action="login.succeeded", actor=staff.user).exists()
    failed = Event.objects.get(action="login.failed")
    assert failed.details == {"email": customer.user.email}
