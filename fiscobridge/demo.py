"""Demo data for a newcomer: idempotent tenants and logins, plus a few fresh keys each run."""

import json
import os
import secrets
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import transaction

from fiscobridge.accounts.models import User
from fiscobridge.accounts.services import create_account, create_api_token, create_partner, create_staff_user
from fiscobridge.accounts.two_factor import set_partner_two_factor_requirement
from fiscobridge.core.localtime import DEFAULT_TIME_ZONE
from fiscobridge.keys.issuance import issue_keys
from fiscobridge.keys.limits import Requester
from fiscobridge.keys.redemption import activate_key

STAFF_EMAIL = "staff@fiscobridge.example"
PARTNER_EMAIL = "reseller@demo-partner.example"
CUSTOMER_EMAIL = "owner@demo-shop.example"


@dataclass
class DemoReport:
    logins: list[tuple[str, str, str]]
    fresh_keys: list[tuple[str, str]]
    customer_token: str


def _passwords() -> dict[str, str]:
    """Random demo passwords, made once and kept (mode 600) in the data directory."""
    path = settings.DATA_DIR / "demo-logins.json"
    if path.exists():
        return json.loads(path.read_text())
    passwords = {role: secrets.token_urlsafe(12) for role in ("staff", "partner", "customer")}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(passwords, handle)
    return passwords


def _login(email: str, password: str, create) -> User:
    """The demo user with this e-mail, made once through `create` (a service); its password is
    set back to the kept one if somebody changed it."""
    user = User.objects.filter(email=email).first()
    if user is None:
        return create(email=email, password=password)
    if not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    return user


@transaction.atomic
def load_demo(*, time_zone: str = DEFAULT_TIME_ZONE) -> DemoReport:
    """The demo tenants (in `time_zone` when they are first made; later runs keep whatever zone
    their users chose on the Settings page), staff, fresh keys and a token."""
    passwords = _passwords()
    _login(STAFF_EMAIL, passwords["staff"], create_staff_user)
    reseller = _login(
        PARTNER_EMAIL, passwords["partner"], partial(create_partner, name="Demo Reseller", time_zone=time_zone)
    )
    owner = _login(
        CUSTOMER_EMAIL, passwords["customer"], partial(create_account, name="Demo Shop", time_zone=time_zone)
    )
    partner, account = reseller.partner, owner.account
    staff = User.objects.get(email=STAFF_EMAIL)
    if partner.require_two_factor:
        # New partners require two-factor sign-in; the demo one does not, so that the printed
        # password is all a newcomer needs (docs/two-factor.md). Staff always need it.
        set_partner_two_factor_requirement(partner=partner, required=False, actor=staff)

    if not account.subscriptions.exists():
        # The customer starts with a redeemed key, through the same services as everybody.
        first = issue_keys(
            partner=partner,
            actor=reseller,
            product="pos",
            seats=3,
            months=12,
            quantity=1,
            reference="demo: first subscription",
        )
        activate_key(
            requester=Requester(account=account, user=owner, session_scope="cli:demo", ip="127.0.0.1"),
            raw=first.keys[0].code,
            product="pos",
        )

    fresh = []
    for product, tier, seats, label in (
        ("pos", "", 2, "Cloud POS, 2 seats, 12 months"),
        ("int", "starter", 1, "Integrations Starter, 1 seat, 12 months"),
    ):
        batch = issue_keys(
            partner=partner,
            actor=reseller,
            product=product,
            tier=tier,
            seats=seats,
            months=12,
            quantity=3,
            reference="demo",
        )
        fresh.extend((key.code, label) for key in batch.keys)
    token = create_api_token(user=owner, name="demo").plain
    return DemoReport(
        logins=[
            ("staff", STAFF_EMAIL, passwords["staff"]),
            ("partner", PARTNER_EMAIL, passwords["partner"]),
            ("customer", CUSTOMER_EMAIL, passwords["customer"]),
        ],
        fresh_keys=fresh,
        customer_token=token,
    )
