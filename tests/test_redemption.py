"""Validate and activate: every row of SPEC 2.5, in order, with exact codes, statuses and messages."""

from datetime import timedelta

import pytest
import time_machine

from fiscobridge.audit.models import Event
from fiscobridge.core import clock
from fiscobridge.keys.models import ActivationKey, RedeemAttempt
from fiscobridge.keys.queries import get_key_for_partner
from fiscobridge.keys.services import revoke_key
from fiscobridge.subscriptions.models import Subscription
from tests.factories import activate, error_of, post_json, validate

VALIDATE = "/api/v1/keys/validate"
ACTIVATE = "/api/v1/keys/activate"


def test_validate_previews_the_package_without_changing_anything(customer, issue):
    [code] = issue(seats=3, months=12)
    with time_machine.travel("2027-01-31 10:00:00Z", tick=False):
        response = validate(customer, code.lower().replace("-", " "))
    assert response.status_code == 200
    body = response.json()
    assert body["product"] == "pos" and body["tier"] is None
    assert body["seats"] == 3 and body["months"] == 12
    assert body["key_hint"] == f"POS-••••-••••-{code[-4:]}"
    assert body["starts_at"].startswith("2027-01-31T10:00:00")
    assert body["expires_at"].startswith("2028-01-31T10:00:00")
    assert body["seats_total_after"] == 3
    assert body["renewal_options"] == []
    assert ActivationKey.objects.get().status == "available"
    assert not Subscription.objects.exists()


def test_activate_creates_a_subscription_usable_at_once(customer, issue):
    [code] = issue(seats=4, months=1)
    with time_machine.travel("2027-01-31 10:00:00Z", tick=False):
        response = activate(customer, code)
        summary = customer.client.get("/api/v1/subscriptions").json()
    assert response.status_code == 201
    sub = response.json()["subscription"]
    assert sub["status"] == "active" and sub["seats"] == 4 and sub["source"] == "key"
    assert sub["key_hint"] == f"POS-••••-••••-{code[-4:]}"
    assert sub["started_at"].startswith("2027-01-31T10:00:00")
    assert sub["expires_at"].startswith("2027-02-28T10:00:00")  # clamped to the month's end
    assert summary["pos"]["seats_total"] == 4
    key = ActivationKey.objects.get()
    assert key.status == "activated" and key.activated_account == customer.account
    assert key.activated_by == customer.user and key.activated_at is not None


def test_integrations_key_grants_seats_of_its_tier_and_ends_the_trial(customer, issue):
    [code] = issue(product="int", tier="growth", seats=2)
    before = customer.client.get("/api/v1/subscriptions").json()["int"]
    assert before["trial"] == {"seats_total": 1, "seats_used": 0, "invoices_per_month": 50}
    preview = validate(customer, code, product="int").json()
    assert preview["tier"] == "growth" and preview["seats_total_after"] == 2
    assert activate(customer, code, product="int").status_code == 201
    after = customer.client.get("/api/v1/subscriptions").json()["int"]
    assert after["tiers"] == {
        "starter": {"seats_total": 0, "seats_used": 0},
        "growth": {"seats_total": 2, "seats_used": 0},
        "scale": {"seats_total": 0, "seats_used": 0},
    }
    assert after["trial"] is None
    assert after["subscriptions"][0]["tier"] == "growth"


def test_seats_of_several_subscriptions_add_up(customer, issue):
    for code in issue(seats=2, quantity=2) + issue(seats=5):
        assert activate(customer, code).status_code == 201
    assert customer.client.get("/api/v1/subscriptions").json()["pos"]["seats_total"] == 9


# --- SPEC 2.5, row by row -------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", [VALIDATE, ACTIVATE])
@pytest.mark.parametrize("typed", ["POS-ABCD", "POS-AAAA-AAAA-AAA!", "hello", "", "INT-22222-2222-2222"])
def test_row2_malformed_key_is_invalid_format(customer, endpoint, typed):
    response = post_json(customer.client, endpoint, {"key": typed, "product": "pos"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_format" and error["message"] == "Invalid key format"
    assert error["details"]["problem"] == "malformed"
    assert any("POS-XXXX-XXXX-XXXX" in hint for hint in error["details"]["hints"])
    assert any("2–9" in hint for hint in error["details"]["hints"])


def test_row2_one_mistyped_character_says_so(customer, issue):
    [code] = issue()
    typo = code[:-1] + ("2" if code[-1] != "2" else "3")
    error = error_of(activate(customer, typo))
    assert error["code"] == "invalid_format"
    assert error["details"]["problem"] == "check_character"
    assert "mistyped" in error["details"]["hints"][0]


@pytest.mark.parametrize("endpoint", [VALIDATE, ACTIVATE])
def test_row3_key_of_the_other_product_names_its_page(customer, issue, endpoint):
    [int_code] = issue(product="int", tier="starter")
    [pos_code] = issue()
    on_pos = post_json(customer.client, endpoint, {"key": int_code, "product": "pos"})
    assert on_pos.status_code == 400
    assert error_of(on_pos) == {
        "code": "wrong_product",
        "message": "This is an Integrations key (INT-). Redeem it on the Integrations page.",
        "details": {"key_product": "int"},
    }
    on_int = post_json(customer.client, endpoint, {"key": pos_code, "product": "int"})
    assert error_of(on_int)["message"] == "This is a Cloud POS key (POS-). Redeem it on the POS Manager page."


@pytest.mark.parametrize("endpoint", [VALIDATE, ACTIVATE])
def test_row4_key_already_active_on_this_account(customer, teammate, issue, endpoint):
    [code] = issue()
    assert activate(customer, code).status_code == 201
    for persona in (customer, teammate):
        response = post_json(persona.client, endpoint, {"key": code, "product": "pos"})
        assert response.status_code == 409
        assert error_of(response) == {
            "code": "already_activated",
            "message": "This key is already active on your account",
            "details": {},
        }


def _not_available_reasons(customer, outsider, reseller, issue):
    """Codes for each reason of row 5: unknown, activated elsewhere, revoked, past redeem-by."""
    from fiscobridge.keys.codes import generate_code

    unknown = generate_code("pos")
    [elsewhere] = issue()
    assert activate(outsider, elsewhere).status_code == 201
    [revoked] = issue()
    key = ActivationKey.objects.get(last_group=revoked[-4:], status="available")
    revoke_key(key=get_key_for_partner(reseller.partner, key.pk), reason="customer cancelled", actor=reseller.user)
    [expired] = issue(redeem_by=clock.now() + timedelta(days=1))
    return {"unknown": unknown, "elsewhere": elsewhere, "revoked": revoked, "expired": expired}


@pytest.mark.parametrize("endpoint", [VALIDATE, ACTIVATE])
def test_row5_every_reason_gives_a_byte_identical_answer(customer, outsider, reseller, issue, endpoint):
    codes = _not_available_reasons(customer, outsider, reseller, issue)
    with time_machine.travel(clock.now() + timedelta(days=2)):
        responses = {
            reason: post_json(customer.client, endpoint, {"key": code, "product": "pos"})
            for reason, code in codes.items()
        }
    bodies = {reason: r.content for reason, r in responses.items()}
    assert len(set(bodies.values())) == 1, bodies
    assert {r.status_code for r in responses.values()} == {409}
    assert error_of(responses["unknown"]) == {
        "code": "not_available",
        "message": "This activation key is not available",
        "details": {},
    }

    # Every answer has its own request id (random, so it tells nothing); the rest is identical.
    def headers(response):
        return tuple(sorted((k, v) for k, v in response.headers.items() if k != "X-Request-Id"))

    assert all(r.headers["X-Request-Id"] for r in responses.values())
    assert {headers(r) for r in responses.values()} == {headers(responses["unknown"])}


def test_redeem_by_is_honoured_up_to_the_moment(customer, issue):
    deadline = clock.now() + timedelta(days=1)
    [code] = issue(redeem_by=deadline)
    with time_machine.travel(deadline - timedelta(seconds=1)):
        assert validate(customer, code).status_code == 200
    with time_machine.travel(deadline):
        assert error_of(activate(customer, code))["code"] == "not_available"


def test_checks_run_in_spec_order(customer, issue):
    """A mistyped INT key on the POS page is a format error (row 2) before wrong product (row 3)."""
    [int_code] = issue(product="int", tier="scale")
    typo = int_code[:-1] + ("2" if int_code[-1] != "2" else "3")
    assert error_of(activate(customer, typo))["code"] == "invalid_format"
    # Already active (row 4) is answered before availability (row 5) — and wrong product before both.
    assert activate(customer, int_code, product="int").status_code == 201
    assert error_of(activate(customer, int_code, product="pos"))["code"] == "wrong_product"
    assert error_of(activate(customer, int_code, product="int"))["code"] == "already_activated"


def test_every_attempt_is_recorded_with_a_hash_of_the_input_only(customer, issue):
    [code] = issue()
    activate(customer, "POS-ABCD")
    validate(customer, code)
    activate(customer, code)
    activate(customer, code)
    outcomes = list(RedeemAttempt.objects.order_by("id").values_list("action", "outcome", "failed"))
    assert outcomes == [
        ("activate", "invalid_format", False),
        ("validate", "ok", False),
        ("activate", "ok", False),
        ("activate", "already_activated", False),
    ]
    for attempt in RedeemAttempt.objects.all():
        assert len(attempt.input_hash) == 64 and code not in attempt.input_hash
    actions = list(Event.objects.filter(account=customer.account).order_by("id").values_list("action", flat=True))
    assert "key.activation_failed" in actions and "key.validated" in actions
    assert "key.activated" in actions and "subscription.created" in actions


def test_a_key_is_redeemed_once_across_accounts(customer, outsider, issue):
    [code] = issue()
    assert activate(customer, code).status_code == 201
    response = activate(outsider, code)
    assert response.status_code == 409 and error_of(response)["code"] == "not_available"
    assert Subscription.objects.count() == 1
