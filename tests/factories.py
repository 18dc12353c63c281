"""Plain builders and checks shared by the test modules (fixtures live in conftest.py).

No test module imports from another test module: what two of them need lives here once.
"""

import re
import threading
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from fiscobridge.accounts.services import create_api_token
from fiscobridge.keys.codes import ALPHABET, code_digest, hint_for, is_valid_body, parse_key
from fiscobridge.keys.models import ActivationKey
from fiscobridge.tasks.worker import run_ready_tasks

PASSWORD = "correct-horse-battery-staple"  # every persona's login password
PFX_PASSWORD = "pfx-pässword-42"  # non-ASCII on purpose: PKCS#12 passwords are UTF-8 here
ACTIVATE = "/api/v1/keys/activate"
VALIDATE = "/api/v1/keys/validate"
CERTIFICATES = "/api/v1/pos/certificates"


# --- clients --------------------------------------------------------------------------------


def post_json(client: Client, path: str, data, **extra):
    return client.post(path, data=data, content_type="application/json", **extra)


def token_client(token: str) -> Client:
    """A client that sends an API token as its bearer credential."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def bearer_client(user) -> Client:
    """A client with a new API token of `user`: for the failed-attempt limits, a separate session."""
    return token_client(create_api_token(user=user).plain)


def browser_for(persona) -> Client:
    """A browser session of the persona (logged in, as after the login page, including its code
    step when the user has an authenticator)."""
    client = Client()
    client.force_login(persona.user)
    verify_session(client, persona.user)
    return client


# --- two-factor sign-in -----------------------------------------------------------------------


def totp_code(device, *, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows for `device` now (or `steps_ahead` 30-second steps
    later: a code is accepted once, and one step either side of now is accepted)."""
    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift + steps_ahead)
    return f"{totp.token():0{device.digits}d}"


def enrol_authenticator(user):
    """Turns two-factor sign-in on for `user` through the services; returns (device, recovery codes)."""
    from fiscobridge.accounts import two_factor

    pending = two_factor.start_authenticator_setup(user=user)
    codes = two_factor.confirm_authenticator(user=user, token=totp_code(pending))
    return two_factor.confirmed_authenticator(user), codes.codes


def verify_session(client: Client, user) -> None:
    """Marks a logged-in test session as having passed the code step (what django_otp.login does)."""
    from django_otp import DEVICE_ID_SESSION_KEY

    from fiscobridge.accounts.two_factor import confirmed_authenticator

    device = confirmed_authenticator(user)
    if device is not None:
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()


def _client_of(persona_or_client) -> Client:
    return getattr(persona_or_client, "client", persona_or_client)


# --- keys -----------------------------------------------------------------------------------


def validate(persona_or_client, code: str, product: str = "pos"):
    return post_json(_client_of(persona_or_client), VALIDATE, {"key": code, "product": product})


def activate(persona_or_client, code: str, product: str = "pos", **extra):
    """POST the key to the activate endpoint; returns the response (whatever it is)."""
    return post_json(_client_of(persona_or_client), ACTIVATE, {"key": code, "product": product, **extra})


def redeem(persona_or_client, code: str, product: str = "pos", **extra) -> dict:
    """Activate a key that must be accepted; returns the new subscription (as the API shows it)."""
    response = activate(persona_or_client, code, product, **extra)
    assert response.status_code == 201, response.content
    return response.json()["subscription"]


def grant(persona, issue, *, product: str = "pos", tier: str = "", seats: int = 2, months: int = 12) -> int:
    """Issue a key (with the `issue` fixture) and activate it for the persona; returns the subscription id."""
    [code] = issue(product=product, tier=tier, seats=seats, months=months)
    return redeem(persona, code, product)["id"]


def key_of(code: str) -> ActivationKey:
    return ActivationKey.objects.get(code_hmac=code_digest(parse_key(code).canonical))


def revoke_url(key_id) -> str:
    return f"/api/v1/partner/keys/{key_id}/revoke"


def unknown_code(code: str) -> str:
    """A well-formed key nobody issued: one character changed, then a correct check character."""
    stem = mistyped(code)[:-1]
    return stem + next(c for c in ALPHABET if is_valid_body((stem + c).replace("-", "")[3:]))


def mistyped(code: str) -> str:
    """The same key with one character of the middle group changed: the check character fails."""
    position = 9
    replacement = ALPHABET[(ALPHABET.index(code[position]) + 1) % len(ALPHABET)]
    return code[:position] + replacement + code[position + 1 :]


def code_variants(code: str) -> list[str]:
    """The ways a code may be written down (with and without prefix, dashes, case)."""
    body = code[4:].replace("-", "")
    return [code, code[4:], body, body.lower(), code.lower()]


# --- answers --------------------------------------------------------------------------------


def error_of(response) -> dict:
    return response.json()["error"]


def assert_error(response, statuses=(400, 422), code=None) -> dict:
    """The response is an error with exactly the body of SPEC 5.2; returns its `error`."""
    if isinstance(statuses, int):
        statuses = (statuses,)
    assert response.status_code in statuses, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["code"], str) and re.fullmatch(r"[a-z][a-z_]*", error["code"])
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code
    return error


def dump_database() -> str:
    """Every row of every table as text (what a leaked backup would show)."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


# --- certificates (PKCS#12) -----------------------------------------------------------------

NOW = datetime.now(UTC)


def make_certificate(
    *,
    org="Acme Retail SA",
    unit="Store 12",
    cn="acme-pos.example",
    locality="Monterrey",
    pac="PAC-0042",
    valid_from=None,
    valid_until=None,
    serial=None,
    rsa_key=False,
):
    """A self-signed certificate and its private key (EC P-256 unless `rsa_key`)."""
    if rsa_key:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())  # fast to make; PKCS#12 does not care
    attributes = [
        (NameOID.ORGANIZATION_NAME, org),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
        (NameOID.COMMON_NAME, cn),
        (NameOID.LOCALITY_NAME, locality),
        (NameOID.SERIAL_NUMBER, pac),
    ]
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes if value])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(valid_from or NOW - timedelta(days=30))
        .not_valid_after(valid_until or NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def modern_encryption(password=PFX_PASSWORD):
    return (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )


def to_pfx(certificate, key, *, password=PFX_PASSWORD, encryption=None, cas=None) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        b"pos", key, certificate, cas, encryption or modern_encryption(password)
    )


def new_pfx(**subject) -> bytes:
    """A fresh PKCS#12 file (AES-256, PFX_PASSWORD) of a new certificate; `subject` as make_certificate."""
    return to_pfx(*make_certificate(**subject))


def upload_pfx(persona_or_client, data: bytes, password=PFX_PASSWORD, name="pos.pfx"):
    """Upload a certificate file through the API; returns the response."""
    return _client_of(persona_or_client).post(
        CERTIFICATES, {"file": SimpleUploadedFile(name, data, "application/x-pkcs12"), "password": password}
    )


# --- one tenant's objects, each behind an id (tests of scopes and of the tenant matrix) ----------

CONNECTIONS = "/api/v1/integrations/connections"


def owned_objects(customer, reseller, issue) -> dict:
    """Through the API with full-access tokens: the customer gets POS and Integrations Starter
    seats, a certificate and a connection; the reseller keeps available keys. Returns their ids
    and two fresh codes (one to redeem, one to look up). Every id route then has a real object."""
    grant(customer, issue, seats=5)
    grant(customer, issue, product="int", tier="starter", seats=5)
    uploaded = upload_pfx(customer, new_pfx())
    assert uploaded.status_code == 201, uploaded.content
    created = post_json(customer.client, CONNECTIONS, {"type": "xero", "tier": "starter", "name": "Books"})
    assert created.status_code == 201, created.content
    fresh, looked_up, revocable = issue(quantity=3)
    return {
        "certificate": uploaded.json()["uid"],
        "connection": created.json()["uid"],
        "key_id": key_of(revocable).pk,
        "code": fresh,
        "lookup_code": looked_up,
    }


# --- Stripe: buying through the portal, as a customer does ----------------------------------


def start_checkout_page(persona, *, product="pos", tier="", seats=3, interval="month") -> str:
    """POST Purchase Seats as the persona; returns the Checkout Session id Stripe was asked for."""
    response = browser_for(persona).post(
        "/billing/checkout/",
        {
            "product": product,
            "tier": tier,
            "seats": seats,
            "interval": interval,
        },
    )
    assert response.status_code == 303, response.content[:500]
    return response["Location"].rsplit("/", 1)[1]


def buy(fake, persona, **choice) -> str:
    """Checkout, pay, and deliver checkout.session.completed; returns the Stripe subscription id."""
    from tests.stripe_fake import post_event

    session_id = start_checkout_page(persona, **choice)
    event = fake.complete_checkout(session_id)
    response = post_event(Client(), event)
    assert response.status_code == 200, response.content
    return fake.sessions[session_id]["subscription"]


# --- concurrency: requests at the same moment from real threads ------------------------------


def run_tasks() -> None:
    """What the worker would do next: run every queued task that is ready, in this process."""
    run_ready_tasks()


def run_at_once(calls):
    """Run each zero-argument callable in its own thread (own database connection), released together."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        except Exception as error:  # surfaced by the assertions of the test
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def outcome(response):
    """(status, error code or "ok") of an API response, or the repr of the exception a thread raised."""
    if isinstance(response, Exception):
        return repr(response)
    return response.status_code, response.json().get("error", {}).get("code", "ok")


# --- browser (Playwright) -------------------------------------------------------------------


def log_in(page, live_server, persona) -> None:
    """Log in through the login page; waits for the page a partner (Dashboard) or customer lands on."""
    from playwright.sync_api import expect

    lands_on = "Dashboard" if persona.user.partner_id else "POS Manager"
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(persona.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name=lands_on)).to_be_visible()


def mark_page(page) -> None:
    """A marker that survives only as long as no full page load happens."""
    page.evaluate("window.__noReload = true")


def assert_not_reloaded(page) -> None:
    assert page.evaluate("window.__noReload === true")


def hint_of(code: str) -> str:
    """The hint a page shows for a plain code (`POS-••••-••••-JKLM`)."""
    return hint_for(code[:3], code[-4:])
