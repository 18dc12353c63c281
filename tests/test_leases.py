"""Offline leases (SPEC 9.1, docs/leases.md): a POS device fetches a lease and the JWKS while
online, then decides alone — from the token and the keys, with nothing but a JWT library — until
the lease expires. Time is moved with time-machine; the device's clock is the frozen clock."""

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fiscobridge.accounts.services import create_api_token
from fiscobridge.audit.models import Event
from fiscobridge.cli import main
from fiscobridge.core.encryption import decrypt
from fiscobridge.leases import signing_keys
from fiscobridge.leases.models import SigningKey
from fiscobridge.leases.signing_keys import PURPOSE, rotate_signing_key
from fiscobridge.subscriptions.models import Subscription
from fiscobridge.subscriptions.services import end_subscription
from tests.factories import (
    CERTIFICATES,
    browser_for,
    dump_database,
    grant,
    make_certificate,
    new_pfx,
    post_json,
    redeem,
    run_at_once,
    to_pfx,
    token_client,
    upload_pfx,
)

START = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)
JWKS_URL = "/.well-known/jwks.json"


def lease_url(uid: str) -> str:
    return f"{CERTIFICATES}/{uid}/lease"


def at(moment: datetime):
    return time_machine.travel(moment, tick=False)


class PosDevice:
    """What a POS does: online, it fetches its lease and the JWKS; offline, it decides from those
    two alone with PyJWT (as docs/leases.md shows), without this project's code."""

    def __init__(self, client, uid: str, fingerprint: str):
        self.client, self.uid, self.fingerprint = client, uid, fingerprint
        self.lease: str | None = None
        self.jwks: dict | None = None

    def go_online(self) -> dict:
        response = post_json(self.client, lease_url(self.uid), {})
        assert response.status_code == 200, response.content
        self.lease = response.json()["lease"]
        self.jwks = self.client.get(JWKS_URL).json()
        return response.json()

    def may_sign(self) -> tuple[bool, str]:
        """Offline: (may it sign, why). Asserts that nothing reaches the server or the database."""
        with CaptureQueriesContext(connection) as queries:
            verdict = self._decide()
        assert queries.captured_queries == []
        return verdict

    def _decide(self) -> tuple[bool, str]:
        try:
            kid = jwt.get_unverified_header(self.lease).get("kid")
            keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(self.jwks).keys}
            if kid not in keys:
                return False, "unknown_key"
            claims = jwt.decode(
                self.lease,
                keys[kid],
                algorithms=["EdDSA"],
                audience="fiscobridge-pos",
                leeway=SKEW,
                options={"require": ["exp", "nbf", "iat", "sub", "fpr", "can_sign", "jti"]},
            )
        except jwt.InvalidSignatureError:
            return False, "bad_signature"
        except jwt.ExpiredSignatureError:
            return False, "expired"
        except jwt.ImmatureSignatureError:
            return False, "not_yet_valid"
        if claims["sub"] != self.uid or claims["fpr"] != self.fingerprint:
            return False, "not_my_certificate"
        return claims["can_sign"] is True, claims["reason"]

    def claims(self) -> dict:
        return jwt.decode(self.lease, options={"verify_signature": False})


def device_for(persona, **certificate) -> PosDevice:
    uploaded = upload_pfx(persona, to_pfx(*make_certificate(**certificate)))
    assert uploaded.status_code == 201, uploaded.content
    body = uploaded.json()
    return PosDevice(persona.client, body["uid"], body["fingerprint"])


def seconds(moment: datetime) -> int:
    return int(moment.timestamp())


# --- a valid lease, and what the device refuses ----------------------------------------------------


def test_a_valid_lease_lets_the_device_sign_offline_until_it_expires(customer, issue, settings):
    settings.PUBLIC_BASE_URL = "https://licensing.fiscobridge.example"
    with at(START) as travel:
        grant(customer, issue, seats=2)
        device = device_for(customer)
        answer = device.go_online()
        claims, header = device.claims(), jwt.get_unverified_header(device.lease)
        assert header == {"alg": "EdDSA", "kid": header["kid"], "typ": "JWT"}
        assert header["kid"] in {key["kid"] for key in device.jwks["keys"]}
        now = seconds(START)
        assert claims == {
            "iss": "https://licensing.fiscobridge.example",
            "aud": "fiscobridge-pos",
            "sub": device.uid,
            "acct": customer.account.pk,
            "fpr": device.fingerprint,
            "can_sign": True,
            "reason": "ok",
            "iat": now,
            "nbf": now,
            "exp": now + 72 * 3600,
            "jti": claims["jti"],
        }
        assert answer["expires_at"] == "2027-03-04T12:00:00Z"
        assert device.may_sign() == (True, "ok")
        travel.move_to(START + timedelta(hours=71, minutes=59))
        assert device.may_sign() == (True, "ok")
        travel.move_to(START + timedelta(hours=72, minutes=6))
        assert device.may_sign() == (False, "expired")


def test_each_lease_is_audited_and_never_stored(customer, issue):
    grant(customer, issue)
    device = device_for(customer)
    device.go_online()
    claims = device.claims()
    [event] = Event.objects.filter(action="lease.issued")
    assert event.account_id == customer.account.pk and event.actor_id == customer.user.pk
    assert event.target_type == "pos.certificate" and event.target_id != ""
    assert event.details["certificate"] == device.uid and event.details["jti"] == claims["jti"]
    assert event.details["exp"] == datetime.fromtimestamp(claims["exp"], UTC).isoformat()
    signature = device.lease.rsplit(".", 1)[1]
    assert signature not in dump_database() and device.lease.split(".")[1] not in dump_database()
    page = browser_for(customer).get("/activity/").content.decode()
    assert "Offline lease issued" in page and signature not in page


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_a_tampered_payload_is_refused(customer, issue, staff):
    [first] = [grant(customer, issue, seats=1)]
    device = device_for(customer)
    end_subscription(subscription=Subscription.objects.get(pk=first), reason="test", actor=staff.user)
    device.go_online()
    assert device.may_sign() == (False, "no_active_subscription")
    head, _, signature = device.lease.split(".")
    forged = {**_payload(device.lease), "can_sign": True, "reason": "ok"}
    device.lease = ".".join([head, _b64(json.dumps(forged).encode()), signature])
    assert device.may_sign() == (False, "bad_signature")


def test_a_lease_signed_with_another_key_is_refused(customer, issue):
    grant(customer, issue)
    device = device_for(customer)
    device.go_online()
    kid = jwt.get_unverified_header(device.lease)["kid"]
    # Same claims, same kid, but a key the server never published.
    device.lease = jwt.encode(device.claims(), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})
    assert device.may_sign() == (False, "bad_signature")
    device.lease = jwt.encode(device.claims(), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "x"})
    assert device.may_sign() == (False, "unknown_key")


def test_a_lease_of_another_certificate_is_refused(customer, issue):
    grant(customer, issue)
    mine, other = device_for(customer, org="Till 1"), device_for(customer, org="Till 2")
    other.go_online()
    mine.lease, mine.jwks = other.lease, other.jwks
    assert mine.may_sign() == (False, "not_my_certificate")


def test_clock_skew_of_five_minutes_is_accepted_and_more_is_refused(customer, issue):
    with at(START) as travel:
        grant(customer, issue)
        device = device_for(customer)
        device.go_online()
        exp = datetime.fromtimestamp(device.claims()["exp"], UTC)
        # A device whose clock is behind sees the lease before its nbf; one ahead, after its exp.
        for moment, expected in (
            (START - timedelta(minutes=4, seconds=59), (True, "ok")),
            (START - timedelta(minutes=5, seconds=1), (False, "not_yet_valid")),
            (exp + timedelta(minutes=4, seconds=59), (True, "ok")),
            (exp + timedelta(minutes=5, seconds=1), (False, "expired")),
        ):
            travel.move_to(moment)
            assert device.may_sign() == expected, moment


# --- key rotation ------------------------------------------------------------------------------------


def test_key_rotation_keeps_old_leases_valid_until_they_expire(customer, issue):
    with at(START) as travel:
        grant(customer, issue)
        old_device = device_for(customer, org="Till 1")
        old_device.go_online()
        old_kid = jwt.get_unverified_header(old_device.lease)["kid"]
        travel.move_to(START + timedelta(hours=1))
        rotation = rotate_signing_key()
        assert rotation.retired.kid == old_kid and rotation.new.kid != old_kid
        new_device = device_for(customer, org="Till 2")
        new_device.go_online()
        assert jwt.get_unverified_header(new_device.lease)["kid"] == rotation.new.kid
        published = [key["kid"] for key in new_device.jwks["keys"]]
        assert published == [rotation.new.kid, old_kid]
        # The old device, with the fresh JWKS, still trusts its old lease.
        old_device.jwks = new_device.jwks
        assert old_device.may_sign() == (True, "ok") and new_device.may_sign() == (True, "ok")
        # The old key is published until no lease it signed can be accepted, not longer.
        until = rotation.retired.published_until
        assert until >= datetime.fromtimestamp(old_device.claims()["exp"], UTC) + SKEW
        travel.move_to(until - timedelta(seconds=1))
        assert old_kid in {key["kid"] for key in customer.client.get(JWKS_URL).json()["keys"]}
        travel.move_to(until)
        assert [key["kid"] for key in customer.client.get(JWKS_URL).json()["keys"]] == [rotation.new.kid]


def test_a_process_that_cached_the_old_key_signs_with_it_only_while_it_stays_published(customer, issue, settings):
    with at(START) as travel:
        grant(customer, issue)
        device = device_for(customer)
        device.go_online()
        cached = signing_keys._cache
        rotation = rotate_signing_key()  # by another process: this one keeps its cached key
        signing_keys._cache = cached
        travel.move_to(START + timedelta(seconds=settings.LEASE_KEY_CACHE_SECONDS - 1))
        device.go_online()
        assert jwt.get_unverified_header(device.lease)["kid"] == rotation.retired.kid
        exp = datetime.fromtimestamp(device.claims()["exp"], UTC)
        assert exp + SKEW <= rotation.retired.published_until
        travel.move_to(START + timedelta(seconds=settings.LEASE_KEY_CACHE_SECONDS))
        device.go_online()
        assert jwt.get_unverified_header(device.lease)["kid"] == rotation.new.kid


def test_the_jwks_holds_public_keys_only_and_the_private_key_is_stored_encrypted(anonymous, db):
    response = anonymous.get(JWKS_URL)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-cache"
    [key] = response.json()["keys"]
    assert set(key) == {"kty", "crv", "x", "kid", "use", "alg"}  # no "d": nothing private
    assert (key["kty"], key["crv"], key["use"], key["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")
    row = SigningKey.objects.get()
    assert row.kid == key["kid"] and row.current is True
    private = Ed25519PrivateKey.from_private_bytes(decrypt(PURPOSE, bytes(row.private_key_encrypted)))
    assert private.public_key().public_bytes_raw() == bytes(row.public_key)
    assert private.private_bytes_raw() not in bytes(row.private_key_encrypted)
    assert anonymous.post(JWKS_URL).status_code == 405


# --- what the lease says as the account changes --------------------------------------------------------


def test_a_revoked_certificate_gets_a_lease_that_says_no(customer, issue):
    with at(START):
        grant(customer, issue)
        device = device_for(customer)
        device.go_online()
        assert device.may_sign() == (True, "ok")
        assert post_json(customer.client, f"{CERTIFICATES}/{device.uid}/revoke", {}).status_code == 200
        answer = device.go_online()
        assert device.may_sign() == (False, "revoked")
        assert device.claims()["exp"] == seconds(START) + 3600  # a "no" lasts an hour
        assert answer["expires_at"] == "2027-03-01T13:00:00Z"


def test_a_subscription_ending_within_72_hours_ends_the_lease(customer, issue):
    with at(START) as travel:
        subscription = redeem(customer, issue(seats=2, months=1)[0])
        device = device_for(customer)
        ends = datetime.fromisoformat(subscription["expires_at"])
        travel.move_to(ends - timedelta(hours=10))
        device.go_online()
        assert device.claims()["exp"] == seconds(ends)
        assert device.may_sign() == (True, "ok")
        travel.move_to(ends + timedelta(minutes=6))
        assert device.may_sign() == (False, "expired")


def test_a_scheduled_renewal_carries_the_lease_past_the_end(customer, issue):
    with at(START) as travel:
        subscription = redeem(customer, issue(seats=2, months=1)[0])
        device = device_for(customer)
        ends = datetime.fromisoformat(subscription["expires_at"])
        travel.move_to(ends - timedelta(hours=10))
        redeem(customer, issue(seats=2, months=1)[0], renew=subscription["id"])
        device.go_online()
        assert device.claims()["exp"] == seconds(ends - timedelta(hours=10) + timedelta(hours=72))


def test_with_several_subscriptions_the_lease_ends_when_capacity_falls_below_the_certificates_place(customer, issue):
    with at(START) as travel:
        short = redeem(customer, issue(seats=2, months=1)[0])
        ends = datetime.fromisoformat(short["expires_at"])
        travel.move_to(ends - timedelta(hours=10))
        redeem(customer, issue(seats=1, months=12)[0])  # capacity 3 now, 1 after `short` ends
        first, second = device_for(customer, org="Till 1"), device_for(customer, org="Till 2")
        first.go_online()
        second.go_online()
        now = ends - timedelta(hours=10)
        assert first.claims()["exp"] == seconds(now + timedelta(hours=72))  # the long seat covers place 1
        assert second.claims()["exp"] == seconds(ends)  # place 2 lapses with `short`
        assert first.may_sign() == second.may_sign() == (True, "ok")


def test_a_certificate_expiring_within_72_hours_ends_the_lease(customer, issue):
    with at(START):
        grant(customer, issue)
        not_after = START + timedelta(hours=30, seconds=30)
        device = device_for(customer, valid_from=START - timedelta(days=1), valid_until=not_after)
        device.go_online()
        assert device.claims()["exp"] == seconds(not_after)
        assert device.may_sign() == (True, "ok")


def test_an_over_seat_certificate_gets_a_lease_that_says_no(customer, issue, staff):
    with at(START):
        grant(customer, issue, seats=1)
        second_subscription = grant(customer, issue, seats=1)
        first, second = device_for(customer, org="Till 1"), device_for(customer, org="Till 2")
        end_subscription(subscription=Subscription.objects.get(pk=second_subscription), reason="test", actor=staff.user)
        first.go_online()
        second.go_online()
        assert first.may_sign() == (True, "ok")
        assert second.may_sign() == (False, "over_seat_limit")
        assert second.claims()["can_sign"] is False and second.claims()["exp"] == seconds(START) + 3600


# --- who may ask ------------------------------------------------------------------------------------------


def test_only_the_owner_with_the_entitlement_scope_gets_a_lease(customer, outsider, reseller, anonymous, issue):
    grant(customer, issue)
    uid = upload_pfx(customer, new_pfx()).json()["uid"]
    events = Event.objects.count()

    theirs = post_json(outsider.client, lease_url(uid), {})
    missing = post_json(outsider.client, lease_url("CZZZZZZZZZZ"), {})
    assert theirs.status_code == missing.status_code == 404 and theirs.json() == missing.json()
    assert theirs.json()["error"]["code"] == "not_found"

    assert post_json(anonymous, lease_url(uid), {}).status_code == 401
    assert post_json(reseller.client, lease_url(uid), {}).json()["error"]["code"] == "forbidden"
    for scopes in (["read"], ["pos:certificates"]):
        limited = token_client(create_api_token(user=customer.user, name="x", scopes=scopes).plain)
        refused = post_json(limited, lease_url(uid), {})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope", scopes
    assert Event.objects.count() == events + 2  # two tokens made; no lease was

    device = token_client(create_api_token(user=customer.user, name="till", scopes=["pos:entitlement"]).plain)
    assert post_json(device, lease_url(uid), {}).status_code == 200


# --- the command line: rotate-signing-key and verify-lease ---------------------------------------------


def test_verify_lease_command_checks_a_lease_offline(customer, issue, tmp_path, capsys):
    grant(customer, issue)
    device = device_for(customer)
    device.go_online()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(device.jwks))

    assert main(["verify-lease", device.lease, "--jwks", str(jwks), "--uid", device.uid]) == 0
    out = capsys.readouterr().out
    assert "VALID: this certificate may sign" in out and f'sub: "{device.uid}"' in out
    assert main(["verify-lease", device.lease]) == 0  # the installation's own published keys
    capsys.readouterr()

    assert main(["verify-lease", device.lease, "--jwks", str(jwks), "--uid", "COTHER"]) == 1
    assert "INVALID" in capsys.readouterr().out
    head, payload, signature = device.lease.split(".")
    tampered = ".".join([head, _b64(json.dumps({**_payload(device.lease), "exp": 4102444800}).encode()), signature])
    assert main(["verify-lease", tampered, "--jwks", str(jwks)]) == 1
    out = capsys.readouterr().out
    assert "INVALID: Signature verification failed" in out and "NOT verified" in out

    assert post_json(customer.client, f"{CERTIFICATES}/{device.uid}/revoke", {}).status_code == 200
    device.go_online()
    assert main(["verify-lease", device.lease, "--jwks", str(jwks)]) == 2
    assert "may not sign: revoked" in capsys.readouterr().out

    with at(datetime.now(UTC) + timedelta(hours=2)):
        assert main(["verify-lease", device.lease, "--jwks", str(jwks)]) == 1
        assert "INVALID: Signature has expired" in capsys.readouterr().out
    assert main(["verify-lease", device.lease, "--jwks", str(tmp_path / "none.json")]) == 1
    assert "cannot read the JWKS" in capsys.readouterr().err


def test_rotate_signing_key_command(customer, issue, capsys):
    grant(customer, issue)
    device = device_for(customer)
    device.go_online()
    old_kid = jwt.get_unverified_header(device.lease)["kid"]
    assert main(["rotate-signing-key"]) == 0
    out = capsys.readouterr().out
    new = SigningKey.objects.get(current=True)
    assert f"New lease signing key: {new.kid}" in out and f"Retired key {old_kid}" in out
    device.go_online()
    assert jwt.get_unverified_header(device.lease)["kid"] == new.kid
    assert Event.objects.filter(action="signing_key.rotated", details__kid=new.kid).exists()


@pytest.mark.parametrize("first_lease", [True, False])
def test_the_first_key_is_made_on_first_need(customer, issue, first_lease):
    assert not SigningKey.objects.exists()
    if first_lease:
        grant(customer, issue)
        device_for(customer).go_online()
    else:
        customer.client.get(JWKS_URL)
    assert SigningKey.objects.count() == 1


def test_the_python_example_of_the_docs_decides_as_the_device(customer, issue):
    """docs/leases.md's PyJWT example, run as written, against a real lease and JWKS."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "leases.md").read_text()
    example = re.search(r"```python\n(.*?)```", text, re.DOTALL).group(1)
    namespace: dict = {}
    exec(compile(example, "docs/leases.md", "exec"), namespace)  # our own documentation, run as written
    may_sign = namespace["may_sign"]
    grant(customer, issue)
    device = device_for(customer)
    device.go_online()
    assert may_sign(device.lease, device.jwks, device.uid, device.fingerprint) == (True, "ok")
    assert may_sign(device.lease, device.jwks, "COTHER", device.fingerprint) == (False, "not_my_certificate")
    assert may_sign(device.lease[:-4] + "AAAA", device.jwks, device.uid, device.fingerprint)[0] is False
    with at(datetime.now(UTC) + timedelta(hours=73)):
        assert may_sign(device.lease, device.jwks, device.uid, device.fingerprint) == (False, "ExpiredSignatureError")


def test_rotating_the_encryption_secret_re_encrypts_the_signing_key(customer, issue, settings, capsys):
    grant(customer, issue)
    device = device_for(customer)
    device.go_online()
    kid = jwt.get_unverified_header(device.lease)["kid"]
    settings.ENCRYPTION_OLD_SECRETS = [settings.ENCRYPTION_SECRET]
    settings.ENCRYPTION_SECRET = "a-new-encryption-secret-for-this-test"
    assert main(["rotate-encryption-key"]) == 0
    assert "Re-encrypted 1 lease signing key(s)" in capsys.readouterr().out
    settings.ENCRYPTION_OLD_SECRETS = []  # the old secret is gone: the key must open with the new one
    signing_keys.forget_cached_key()
    device.go_online()
    assert jwt.get_unverified_header(device.lease)["kid"] == kid and device.may_sign() == (True, "ok")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_processes_racing_to_make_the_first_key_agree_on_one():
    def first_need():
        signing_keys.forget_cached_key()  # as if each thread were a fresh process
        return signing_keys.current_signing_key().kid

    kids = run_at_once([first_need] * 6)
    assert all(isinstance(kid, str) for kid in kids), kids
    assert len(set(kids)) == 1 and SigningKey.objects.count() == 1
