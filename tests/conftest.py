"""Fixtures: personas and clients, the local Stripe, the browser. Every endpoint is tested for its
owner, another tenant and anonymous. Plain builders live in tests/factories.py."""

import os
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import override_settings

from fiscobridge.accounts.models import Partner
from fiscobridge.accounts.services import create_account, create_api_token, create_partner, create_staff_user
from fiscobridge.keys.issuance import issue_keys
from fiscobridge.keys.models import ActivationKey
from tests.factories import PASSWORD, enrol_authenticator, token_client
from tests.stripe_fake import PRICES, SECRET_KEY, WEBHOOK_SECRET, FakeStripe


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing():
    # PBKDF2's many iterations cost a noticeable fraction of a second per persona; no test is
    # about the hasher itself. override_settings sends setting_changed, which clears Django's
    # cached hashers, and live_server threads share these settings.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


def pytest_collection_modifyitems(config, items):
    # PostgreSQL-only tests (row locks, real concurrency) run in the PostgreSQL pass of
    # `make test`; there a missing or wrong server is an error, never a skip.
    from django.conf import settings

    vendor_is_pg = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    if os.environ.get("FISCOBRIDGE_REQUIRE_POSTGRES") and not vendor_is_pg:
        raise pytest.UsageError("FISCOBRIDGE_REQUIRE_POSTGRES is set but DATABASE_URL is not PostgreSQL")
    if not vendor_is_pg:
        skip = pytest.mark.skip(reason="runs in the PostgreSQL pass of `make test`")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _lease_key_cache_per_test():
    # The lease signing key is cached per process (leases/signing_keys.py); each test's database
    # starts without keys, so a key cached by an earlier test must not sign this test's leases.
    from fiscobridge.leases.signing_keys import forget_cached_key

    forget_cached_key()
    yield
    forget_cached_key()


@dataclass
class Persona:
    user: object
    client: Client  # authenticated with a bearer API token
    token: str

    @property
    def account(self):
        return self.user.account

    @property
    def partner(self):
        return self.user.partner


def _persona(user) -> Persona:
    token = create_api_token(user=user, name="tests").plain
    return Persona(user=user, client=token_client(token), token=token)


@pytest.fixture
def customer(db):
    return _persona(create_account(name="Shop One", email="owner@shop-one.example", password=PASSWORD))


@pytest.fixture
def teammate(customer):
    from fiscobridge.accounts.models import User

    user = User.objects.create_user("teammate@shop-one.example", PASSWORD, account=customer.account)
    return _persona(user)


@pytest.fixture
def outsider(db):
    return _persona(create_account(name="Shop Two", email="owner@shop-two.example", password=PASSWORD))


def _partner_persona(name: str, email: str) -> Persona:
    # New partners require two-factor sign-in. The reseller personas do not, so that the tests of
    # everything else sign in with a password alone; tests/test_two_factor.py covers partners
    # that do (and the staff persona below always does).
    user = create_partner(name=name, email=email, password=PASSWORD)
    Partner.objects.filter(pk=user.partner_id).update(require_two_factor=False)
    user.partner.refresh_from_db()
    return _persona(user)


@pytest.fixture
def reseller(db):
    return _partner_persona("Reseller One", "sales@reseller-one.example")


@pytest.fixture
def other_reseller(db):
    return _partner_persona("Reseller Two", "sales@reseller-two.example")


@pytest.fixture
def staff(db):
    # Staff must sign in with a second factor: the persona has an authenticator, and its browser
    # sessions (tests.factories.browser_for) have passed the code step.
    user = create_staff_user(email="staff@fiscobridge.example", password=PASSWORD)
    enrol_authenticator(user)
    return _persona(user)


@pytest.fixture
def anonymous():
    return Client()


@pytest.fixture
def issue(reseller):
    """Issue keys from `reseller`; returns the plain codes (defaults: one POS key, 2 seats, 12 months)."""

    def _issue(product="pos", tier="", seats=2, months=12, quantity=1, partner=None, **extra):
        issued = issue_keys(
            partner=partner or reseller.partner,
            actor=reseller.user,
            product=product,
            tier=tier,
            seats=seats,
            months=months,
            quantity=quantity,
            **extra,
        )
        return [k.code for k in issued.keys]

    return _issue


@pytest.fixture
def code(issue):
    """A fresh, available Cloud POS key of `reseller`."""
    return issue()[0]


@pytest.fixture
def key_row(code):
    return ActivationKey.objects.get()


@pytest.fixture
def db_vendor(db):
    return connection.vendor


# --- The local Stripe (tests/stripe_fake.py) ----------------------------------------------------


@pytest.fixture(scope="session")
def stripe_server():
    """localstripe and its front, started once per test process (each xdist worker has its own)."""
    server = FakeStripe.start()
    yield server
    server.stop()


@pytest.fixture
def stripe_on(settings, stripe_server):
    """Stripe configured and pointing at the local servers, with every price id set; reset for each test."""
    stripe_server.reset()
    cache.clear()  # the Stripe Prices read by an earlier test (billing/prices.py caches them)
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = stripe_server.url
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.PUBLIC_BASE_URL = "http://testserver"
    for name, (price_id, _interval, _amount) in PRICES.items():
        setattr(settings, name, price_id)
    return stripe_server


# --- Browser tests: Playwright driving Debian's Chromium ------------------------------------

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # live_server + sync Playwright
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Playwright's own browser download cannot work here; Debian's Chromium is installed by
    # scripts/test.sh. A missing browser makes these tests fail, never skip.
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


# --- Content-Security-Policy: every browser test fails on a violation -------------------------

# Runs in every page before its own scripts; reports each violation to the test (and survives
# navigation, unlike a list kept in the page).
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__reportCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} on ${e.documentURI}`);
});
"""


@pytest.fixture
def csp_violations() -> list[str]:
    """What the browser refused under the Content-Security-Policy during the test."""
    return []


@pytest.fixture
def context(context, csp_violations, live_server):
    """pytest-playwright's browser context, watched for CSP violations: the test fails at its end
    if the browser refused anything (a `securitypolicyviolation` event or Chromium's console
    message), or if a page of ours came without the header. A test that provokes a violation on
    purpose empties `csp_violations` itself."""
    context.expose_binding("__reportCspViolation", lambda source, text: csp_violations.append(text))
    context.add_init_script(script=_CSP_LISTENER)

    def on_console(message) -> None:
        if "Content Security Policy" in message.text:
            csp_violations.append(f"console: {message.text}")

    def on_response(response) -> None:
        ours = response.request.resource_type == "document" and response.url.startswith(live_server.url)
        if ours and "content-security-policy" not in response.headers:
            csp_violations.append(f"no Content-Security-Policy header on {response.url}")

    context.on("console", on_console)
    context.on("response", on_response)
    yield context
    if csp_violations:
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(dict.fromkeys(csp_violations)))
