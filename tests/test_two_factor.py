"""Two-factor sign-in (issue 10, item 7): set-up, the code step after the password, recovery
codes, throttling, who must use it, and that API tokens never ask for it."""

import re

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from fiscobridge.accounts import two_factor
from fiscobridge.accounts.errors import TwoFactorCodeInvalid, TwoFactorRequired, TwoFactorThrottled
from fiscobridge.accounts.models import Partner, User
from fiscobridge.accounts.services import create_api_token, create_partner, create_staff_user
from fiscobridge.audit.models import Event
from fiscobridge.core import clock
from tests.factories import PASSWORD, enrol_authenticator, token_client, totp_code, verify_session

pytestmark = pytest.mark.django_db
SETUP = "/account/two-factor/"
VERIFY = "/login/verify/"


def sign_in(client: Client, user, *, next_url: str = "") -> object:
    url = "/login/" + (f"?next={next_url}" if next_url else "")
    return client.post(url, {"username": user.email, "password": PASSWORD})


def logged_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def strict_partner(db):
    """A partner created as every new partner is: two-factor sign-in required."""
    return create_partner(name="Strict Reseller", email="sales@strict.example", password=PASSWORD)


# --- who must use it ------------------------------------------------------------------------


def test_new_partners_require_two_factor_and_staff_always_do(strict_partner, reseller, customer, staff):
    assert strict_partner.partner.require_two_factor is True
    assert two_factor.two_factor_required(strict_partner) is True
    assert two_factor.two_factor_required(staff.user) is True
    assert two_factor.two_factor_required(customer.user) is False
    assert two_factor.two_factor_required(reseller.user) is False  # the persona's partner turned it off


@pytest.mark.parametrize("path", ["/partner/", "/partner/issue/", "/partner/keys/", "/", "/account/two-factor/"])
def test_a_partner_without_an_authenticator_gets_only_the_setup_page(strict_partner, path):
    client = logged_in(Client(), strict_partner)
    response = client.get(path)
    if path == SETUP:
        assert response.status_code == 200
        assert "Two-factor sign-in is required for your account" in response.content.decode()
    else:
        assert response.status_code == 302 and response["Location"] == SETUP


def test_staff_without_an_authenticator_cannot_open_the_admin():
    staff = create_staff_user(email="new-staff@fiscobridge.example", password=PASSWORD)
    client = logged_in(Client(), staff)
    assert client.get("/admin/")["Location"] == SETUP
    assert client.get("/admin/accounts/user/")["Location"] == SETUP
    assert client.get(SETUP).status_code == 200


def test_htmx_and_api_calls_of_an_unfinished_session_are_refused_plainly(strict_partner):
    client = logged_in(Client(), strict_partner)
    htmx = client.get("/partner/keys/table/", headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx["HX-Redirect"] == SETUP
    api = client.get("/api/v1/partner/keys")
    assert api.status_code == 403 and api.json()["error"]["code"] == "two_factor_required"


def test_logging_out_works_before_setup(strict_partner):
    client = logged_in(Client(), strict_partner)
    assert client.post("/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_a_partner_that_does_not_require_it_signs_in_with_a_password(reseller):
    client = Client()
    response = sign_in(client, reseller.user)
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/partner/").status_code == 200


def test_api_tokens_never_ask_for_a_code(strict_partner):
    # Required but not set up, then set up: a bearer token works the same either way.
    client = token_client(create_api_token(user=strict_partner).plain)
    assert client.get("/api/v1/partner/keys").status_code == 200
    enrol_authenticator(strict_partner)
    assert client.get("/api/v1/partner/keys").status_code == 200


# --- setting it up ----------------------------------------------------------------------------


def test_setup_shows_a_server_drawn_qr_code_and_the_secret_then_needs_a_code(customer):
    client = logged_in(Client(), customer.user)
    page = client.get(SETUP).content.decode()
    assert "Set up authenticator app" in page and "<svg" not in page
    response = client.post(SETUP, {"action": "start"})
    assert response.status_code == 302
    page = client.get(SETUP).content.decode()
    device = two_factor.pending_authenticator(customer.user)
    assert device is not None and not device.confirmed
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert "<path" in svg and "style=" not in svg and "<script" not in svg
    assert two_factor.secret_for_display(device) in page
    # Reloading keeps the same secret: the app the user already scanned stays right.
    client.get(SETUP)
    assert two_factor.pending_authenticator(customer.user).key == device.key
    assert not two_factor.has_two_factor(customer.user)


def test_a_wrong_setup_code_is_a_form_error_and_nothing_turns_on(customer):
    client = logged_in(Client(), customer.user)
    client.post(SETUP, {"action": "start"})
    for bad in ["000000", "12345", "abcdef", "", "1" * 40, "12\x0034"]:
        response = client.post(SETUP, {"action": "confirm", "code": bad})
        assert response.status_code in (422, 429), bad
        assert "alert error" in response.content.decode()
    assert not two_factor.has_two_factor(customer.user)


def test_confirming_turns_it_on_and_shows_recovery_codes_once(customer):
    client = logged_in(Client(), customer.user)
    client.post(SETUP, {"action": "start"})
    device = two_factor.pending_authenticator(customer.user)
    response = client.post(SETUP, {"action": "confirm", "code": totp_code(device)})
    assert response.status_code == 200
    page = response.content.decode()
    codes = re.findall(r'<li class="mono">([a-z2-7]{5}-[a-z2-7]{5})</li>', page)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    assert two_factor.has_two_factor(customer.user)
    assert client.session.get("otp_device_id")  # this session proved the code: it is verified
    again = client.get(SETUP).content.decode()
    assert not any(code in again for code in codes) and "Recovery codes left" in again
    event = Event.objects.get(action="two_factor.enabled", actor=customer.user)
    assert event.account == customer.account
    # Neither the secret nor a code is in the audit trail.
    text = str(list(Event.objects.values()))
    assert device.key not in text and not any(code.replace("-", "") in text for code in codes)


def test_a_new_authenticator_replaces_the_old_one_only_when_confirmed(customer):
    old, _ = enrol_authenticator(customer.user)
    two_factor.start_authenticator_setup(user=customer.user)
    assert two_factor.confirmed_authenticator(customer.user).pk == old.pk  # still the old one
    new = two_factor.pending_authenticator(customer.user)
    two_factor.confirm_authenticator(user=customer.user, token=totp_code(new))
    assert list(TOTPDevice.objects.filter(user=customer.user).values_list("pk", flat=True)) == [new.pk]


# --- the code step after the password ---------------------------------------------------------


def test_the_password_alone_does_not_sign_in_a_user_with_an_authenticator(customer):
    device, _ = enrol_authenticator(customer.user)
    client = Client()
    response = sign_in(client, customer.user, next_url="/billing/subscriptions/")
    assert response.status_code == 302 and response["Location"] == VERIFY
    assert "_auth_user_id" not in client.session
    assert client.get("/pos/")["Location"].startswith("/login/")
    assert client.get("/api/v1/subscriptions").status_code == 401
    assert not Event.objects.filter(action="login.succeeded").exists()

    wrong = client.post(VERIFY, {"code": "000000"})
    assert wrong.status_code == 200 and "That code is not right" in wrong.content.decode()

    with time_machine.travel(clock.now().timestamp() + 2, tick=False):  # past django-otp's wait
        done = client.post(VERIFY, {"code": totp_code(device, steps_ahead=1)})
    assert done.status_code == 302 and done["Location"] == "/billing/subscriptions/"
    assert client.get("/pos/").status_code == 200
    assert Event.objects.filter(action="login.succeeded", actor=customer.user).count() == 1
    assert Event.objects.filter(action="two_factor.code_rejected", actor=customer.user).count() == 1


def test_a_code_is_accepted_once(customer):
    device, _ = enrol_authenticator(customer.user)
    code = totp_code(device, steps_ahead=1)
    first = Client()
    sign_in(first, customer.user)
    assert first.post(VERIFY, {"code": code}).status_code == 302
    second = Client()
    sign_in(second, customer.user)
    assert "That code is not right" in second.post(VERIFY, {"code": code}).content.decode()


def test_a_recovery_code_signs_in_once_and_is_audited(customer):
    _, codes = enrol_authenticator(customer.user)
    client = Client()
    sign_in(client, customer.user)
    response = client.post(VERIFY, {"code": f"  {codes[3].upper()} "})  # as typed: spaces, capitals
    assert response.status_code == 302
    event = Event.objects.get(action="two_factor.recovery_code_used")
    assert event.actor == customer.user and event.details == {"codes_left": 9}
    assert StaticToken.objects.filter(device__user=customer.user).count() == 9

    again = Client()
    sign_in(again, customer.user)
    with time_machine.travel(clock.now().timestamp() + 2, tick=False):
        assert "That code is not right" in again.post(VERIFY, {"code": codes[3]}).content.decode()


def test_wrong_codes_are_throttled_then_end_the_pending_sign_in(customer, settings):
    device, _ = enrol_authenticator(customer.user)
    client = Client()
    sign_in(client, customer.user)
    start = clock.now().timestamp()
    with time_machine.travel(start, tick=False):
        assert "That code is not right" in client.post(VERIFY, {"code": "000000"}).content.decode()
        # Right away, even the right code waits: django-otp's delay doubles after each wrong one.
        throttled = client.post(VERIFY, {"code": totp_code(device, steps_ahead=1)}).content.decode()
        assert "Too many wrong codes. Wait 1 second" in throttled
    moment = start
    for attempt in range(2, settings.TWO_FACTOR_MAX_ATTEMPTS + 1):
        moment += 2 ** (attempt - 1)  # each wait has passed
        with time_machine.travel(moment, tick=False):
            response = client.post(VERIFY, {"code": "111111"})
    # The fifth wrong code drops the pending sign-in: the password is asked again.
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get(VERIFY)["Location"] == "/login/"
    assert TOTPDevice.objects.get(pk=device.pk).throttling_failure_count == settings.TWO_FACTOR_MAX_ATTEMPTS


def test_the_service_throttles_wrong_codes_with_the_wait_in_the_error(customer):
    device, _ = enrol_authenticator(customer.user)
    with pytest.raises(TwoFactorCodeInvalid):
        two_factor.verify_second_factor(user=customer.user, token="000000")
    with pytest.raises(TwoFactorThrottled) as throttled:
        two_factor.verify_second_factor(user=customer.user, token=totp_code(device, steps_ahead=1))
    assert throttled.value.http_status == 429 and throttled.value.retry_after >= 1


def test_a_pending_sign_in_expires(customer, settings):
    device, _ = enrol_authenticator(customer.user)
    client = Client()
    sign_in(client, customer.user)
    later = clock.now().timestamp() + settings.TWO_FACTOR_PENDING_SECONDS + 1
    with time_machine.travel(later, tick=False):
        response = client.post(VERIFY, {"code": totp_code(device)})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


def test_odd_input_at_every_code_field_is_a_form_error(customer):
    enrol_authenticator(customer.user)
    client = Client()
    sign_in(client, customer.user)
    odd = ["12\x0034", "abcde\x00fghij", "\x00", "‐" * 40, "١٢٣٤٥٦", "' OR 1=1 --", "x" * 5000]
    for code in odd:
        with time_machine.travel(clock.now().timestamp() + 70, tick=False):  # past any wait
            response = client.post(VERIFY, {"code": code})
        assert response.status_code in (200, 302), code
        if response.status_code == 302:  # the pending sign-in ended after too many wrong codes
            assert response["Location"] == "/login/"
            sign_in(client, customer.user)
    signed_in = logged_in(Client(), customer.user)
    verify_session(signed_in, customer.user)
    for action in ("regenerate", "disable", "confirm"):
        for code in odd[:3]:
            assert signed_in.post(SETUP, {"action": action, "code": code}).status_code in (409, 422, 429)
    assert two_factor.has_two_factor(customer.user)


def test_the_code_page_without_a_password_goes_back_to_login(anonymous):
    assert anonymous.get(VERIFY)["Location"] == "/login/"
    assert anonymous.post(VERIFY, {"code": "123456"})["Location"] == "/login/"


def test_staff_sign_in_to_the_admin_with_both_steps(staff):
    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": staff.user.email, "password": PASSWORD})
    assert response["Location"] == VERIFY
    device = two_factor.confirmed_authenticator(staff.user)
    assert client.post(VERIFY, {"code": totp_code(device, steps_ahead=1)})["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_session_that_skipped_the_code_step_is_ended(staff):
    client = logged_in(Client(), staff.user)  # as if a login form had not asked for the code
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=/admin/")
    assert "_auth_user_id" not in client.session


# --- recovery codes, turning off, and nobody else's device -----------------------------------


def test_new_recovery_codes_need_a_current_code_and_replace_the_old_ones(customer):
    device, old = enrol_authenticator(customer.user)
    client = logged_in(Client(), customer.user)
    verify_session(client, customer.user)
    refused = client.post(SETUP, {"action": "regenerate", "code": "000000"})
    assert refused.status_code == 422
    with time_machine.travel(clock.now().timestamp() + 2, tick=False):
        response = client.post(SETUP, {"action": "regenerate", "code": totp_code(device, steps_ahead=1)})
    new = re.findall(r'<li class="mono">([a-z2-7]{5}-[a-z2-7]{5})</li>', response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    assert Event.objects.filter(action="two_factor.recovery_codes_regenerated", actor=customer.user).exists()
    with pytest.raises(TwoFactorCodeInvalid):
        two_factor.verify_second_factor(user=customer.user, token=old[0])


def test_a_customer_turns_it_off_with_a_code(customer):
    _, codes = enrol_authenticator(customer.user)
    client = logged_in(Client(), customer.user)
    verify_session(client, customer.user)
    response = client.post(SETUP, {"action": "disable", "code": codes[0]})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=customer.user).exists()
    assert not StaticDevice.objects.filter(user=customer.user).exists()
    assert Event.objects.filter(action="two_factor.disabled", actor=customer.user).exists()


def test_where_it_is_required_it_cannot_be_turned_off(strict_partner):
    _, codes = enrol_authenticator(strict_partner)
    with pytest.raises(TwoFactorRequired):
        two_factor.disable_two_factor(user=strict_partner, token=codes[0])
    client = logged_in(Client(), strict_partner)
    verify_session(client, strict_partner)
    page = client.get(SETUP).content.decode()
    assert 'value="disable"' not in page
    assert client.post(SETUP, {"action": "disable", "code": codes[1]}).status_code == 403
    assert two_factor.has_two_factor(strict_partner)


def test_another_user_can_neither_see_nor_reset_your_authenticator(customer, teammate):
    device, codes = enrol_authenticator(customer.user)
    client = logged_in(Client(), teammate.user)
    page = client.get(SETUP).content.decode()
    assert "Set up authenticator app" in page and two_factor.secret_for_display(device) not in page
    # Whatever ids or codes are sent, the page acts on the signed-in user's own devices only.
    for data in (
        {"action": "disable", "code": codes[0], "user": customer.user.pk, "device": device.pk},
        {"action": "regenerate", "code": codes[1], "user": customer.user.pk},
        {"action": "cancel", "device": device.pk},
    ):
        client.post(SETUP, data)
    assert TOTPDevice.objects.filter(pk=device.pk, confirmed=True).exists()
    assert StaticToken.objects.filter(device__user=customer.user).count() == 10
    # Staff get no page of django-otp's that would show secrets or codes.
    staff_client = Client()
    staff_user = create_staff_user(email="s2@fiscobridge.example", password=PASSWORD)
    enrol_authenticator(staff_user)
    staff_client.force_login(staff_user)
    verify_session(staff_client, staff_user)
    assert staff_client.get("/admin/otp_totp/totpdevice/").status_code == 404
    assert staff_client.get("/admin/otp_static/staticdevice/").status_code == 404


def test_staff_reset_a_lost_authenticator_and_set_partner_requirements(staff, strict_partner):
    enrol_authenticator(strict_partner)
    client = Client()
    client.force_login(staff.user)
    verify_session(client, staff.user)
    response = client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "reset_two_factor_action", "_selected_action": [strict_partner.pk]},
    )
    assert response.status_code == 302
    assert not two_factor.has_two_factor(strict_partner)
    assert Event.objects.filter(action="two_factor.reset", actor=staff.user, partner=strict_partner.partner).exists()

    response = client.post(
        reverse("admin:accounts_partner_changelist"),
        {"action": "stop_requiring_two_factor_action", "_selected_action": [strict_partner.partner_id]},
    )
    assert response.status_code == 302
    assert Partner.objects.get(pk=strict_partner.partner_id).require_two_factor is False
    assert Event.objects.filter(action="partner.two_factor_not_required", actor=staff.user).exists()
    # Now the partner's user signs in with the password alone.
    assert Client().post("/login/", {"username": strict_partner.email, "password": PASSWORD})["Location"] == "/"


def test_a_customer_with_an_authenticator_must_still_pass_the_code_step(customer):
    enrol_authenticator(customer.user)
    user = User.objects.get(pk=customer.user.pk)
    assert two_factor.has_two_factor(user) and not two_factor.two_factor_required(user)
    client = Client()
    assert sign_in(client, user)["Location"] == VERIFY
