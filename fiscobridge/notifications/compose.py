"""Composing e-mails about licensing facts: recipients, wording and rendering.

Every e-mail names a key by its hint (`POS-••••-••••-ABCD`), never by its code: the code is not
stored anywhere, so it cannot leak from here either.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.template.loader import render_to_string

from fiscobridge.core.localtime import moment_text
from fiscobridge.subscriptions.models import Subscription


@dataclass(frozen=True)
class Draft:
    kind: str
    dedupe_key: str
    recipients: list[str]
    subject: str
    body: str
    account: object = None
    partner: object = None
    subscription: object = None


def emails_of(users) -> list[str]:
    return list(users.filter(is_active=True).order_by("email").values_list("email", flat=True))


def partner_recipients(partner) -> list[str]:
    return emails_of(partner.users.all()) if partner is not None else []


def account_recipients(account) -> list[str]:
    return emails_of(account.users.all())


def local_text(moment: datetime | None, time_zone: str | None) -> str:
    """A moment as the recipient's tenant reads it: "30 Nov 2026 14:05 +12" (core/localtime.py).
    E-mails are rendered by the worker, with no request and so no active zone: the zone is
    always passed."""
    return moment_text(moment, time_zone)


def account_zone(account) -> str | None:
    return account.time_zone if account is not None else None


def partner_zone(partner) -> str | None:
    return partner.time_zone if partner is not None else None


def product_name(subscription: Subscription) -> str:
    tier = f" {subscription.get_tier_display()}" if subscription.tier else ""
    return f"{subscription.get_product_display()}{tier}"


def seats_phrase(subscription: Subscription) -> str:
    return f"{subscription.seats} seat{'s' if subscription.seats != 1 else ''}"


def package_phrase(subscription: Subscription) -> str:
    return f"{product_name(subscription)}, {seats_phrase(subscription)}"


def email_context(subscription: Subscription, key, *, time_zone: str | None, **extra) -> dict:
    """What every licensing e-mail may say, its moments in `time_zone` (the recipient's tenant)."""
    return {
        "subscription": subscription,
        "key": key,
        "hint": key.hint if key else subscription.key_hint,
        "package": package_phrase(subscription),
        "product": product_name(subscription),
        "account": subscription.account,
        "partner": key.partner if key else None,
        "starts": local_text(subscription.started_at, time_zone),
        "expires": local_text(subscription.expires_at, time_zone),
        "portal_url": settings.PUBLIC_BASE_URL,
        **extra,
    }


def render_body(template: str, context: dict) -> str:
    return render_to_string(f"notifications/{template}.txt", context).strip() + "\n"
