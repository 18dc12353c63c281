"""The one module that talks to Stripe (the official SDK). Everything else sees plain data.

Each function builds a client from settings (so STRIPE_API_BASE can point at a local server),
turns SDK errors into our domain errors, and returns frozen dataclasses instead of SDK objects,
reading both the current API shape (period dates on the subscription item, `price`) and the
older one (period dates on the subscription, `plan`).
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe
from django.conf import settings

from fiscobridge.billing.errors import (
    BillingNotConfigured,
    InvalidWebhook,
    StripeDeclined,
    StripeUnavailable,
)
from fiscobridge.billing.money import amount_text

logger = logging.getLogger(__name__)

# Seconds to wait for Stripe. A page that calls Stripe should fail with a notice, not hang.
TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class RemoteItem:
    id: str
    price_id: str
    quantity: int
    current_period_end: datetime | None


@dataclass(frozen=True)
class RemoteSubscription:
    id: str
    customer_id: str
    status: str
    start_date: datetime
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    items: tuple[RemoteItem, ...]


@dataclass(frozen=True)
class RemoteCheckoutSession:
    id: str
    url: str
    status: str  # open, complete, expired
    customer_id: str
    subscription_id: str
    client_reference_id: str


@dataclass(frozen=True)
class RemoteInvoice:
    id: str
    number: str
    created: datetime | None
    status: str
    total: int  # minor units
    currency: str
    hosted_invoice_url: str
    invoice_pdf: str

    @property
    def display_total(self) -> str:
        """The total in major units: 4500 EUR → "45.00"; zero-decimal currencies as they are."""
        return amount_text(self.total, self.currency)


@dataclass(frozen=True)
class RemotePrice:
    """A recurring Stripe Price: what one seat costs per interval, in minor units of `currency`."""

    id: str
    currency: str  # upper case, as ISO 4217 writes it
    unit_amount: int
    interval: str  # "month" or "year"


def _client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise BillingNotConfigured()
    base = settings.STRIPE_API_BASE
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": base} if base else None,
        # The SDK retries network errors and 5xx answers with its own idempotency keys.
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
    )


class _translate_errors:
    """Turn SDK exceptions into domain errors, logging what Stripe said (never the secret key)."""

    def __init__(self, action: str):
        self.action = action

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None or not isinstance(error, stripe.StripeError):
            return False
        logger.warning(
            "stripe %s failed: %s %s %s",
            self.action,
            type(error).__name__,
            getattr(error, "http_status", None),
            getattr(error, "code", None),
        )
        if isinstance(error, stripe.CardError):
            reason = (error.user_message or "the card was declined").rstrip(".")
            raise StripeDeclined(f"Stripe declined the change: {reason}. Nothing was changed.") from error
        if isinstance(error, stripe.InvalidRequestError):
            raise StripeDeclined(
                "Stripe refused the request. Nothing was changed; please contact support if this persists."
            ) from error
        raise StripeUnavailable() from error


def from_timestamp(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def object_id(value) -> str:
    """An expandable field: an id string, or the expanded object with its id."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def parse_subscription(data: dict[str, Any]) -> RemoteSubscription:
    items = []
    for item in (data.get("items") or {}).get("data") or []:
        price = item.get("price") or item.get("plan")
        items.append(
            RemoteItem(
                id=item["id"],
                price_id=object_id(price),
                quantity=int(item.get("quantity") or 0),
                current_period_end=from_timestamp(item.get("current_period_end") or data.get("current_period_end")),
            )
        )
    return RemoteSubscription(
        id=data["id"],
        customer_id=object_id(data.get("customer")),
        status=str(data.get("status") or ""),
        start_date=from_timestamp(data.get("start_date") or data.get("created")),
        cancel_at_period_end=bool(data.get("cancel_at_period_end")),
        cancel_at=from_timestamp(data.get("cancel_at")),
        canceled_at=from_timestamp(data.get("canceled_at")),
        ended_at=from_timestamp(data.get("ended_at")),
        items=tuple(items),
    )


def _parse_session(data: dict[str, Any]) -> RemoteCheckoutSession:
    return RemoteCheckoutSession(
        id=data["id"],
        url=str(data.get("url") or ""),
        status=str(data.get("status") or ""),
        customer_id=object_id(data.get("customer")),
        subscription_id=object_id(data.get("subscription")),
        client_reference_id=str(data.get("client_reference_id") or ""),
    )


def _parse_invoice(data: dict[str, Any]) -> RemoteInvoice:
    return RemoteInvoice(
        id=str(data.get("id") or ""),
        number=str(data.get("number") or ""),
        created=from_timestamp(data.get("created") or data.get("date")),
        status=str(data.get("status") or ""),
        total=int(data.get("total") or 0),
        currency=str(data.get("currency") or "").upper(),
        hosted_invoice_url=str(data.get("hosted_invoice_url") or ""),
        invoice_pdf=str(data.get("invoice_pdf") or ""),
    )


def invoice_subscription_id(invoice: dict[str, Any]) -> str:
    """The subscription an invoice bills: `parent.subscription_details` now, `subscription` before."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return object_id(details.get("subscription")) or object_id(invoice.get("subscription"))


# --- Calls ---------------------------------------------------------------------------------


def create_customer(*, name: str, email: str, account_id: int) -> str:
    with _translate_errors("customer create"):
        customer = _client().v1.customers.create(
            {"name": name[:250], "email": email, "metadata": {"account_id": str(account_id)}}
        )
    return customer.id


def retrieve_price(price_id: str) -> RemotePrice:
    with _translate_errors("price retrieve"):
        price = _client().v1.prices.retrieve(price_id).to_dict()
    return RemotePrice(
        id=price["id"],
        currency=str(price.get("currency") or "").upper(),
        unit_amount=int(price.get("unit_amount") or 0),
        interval=str((price.get("recurring") or {}).get("interval") or ""),
    )


def create_checkout_session(
    *,
    customer_id: str,
    price_id: str,
    quantity: int,
    account_id: int,
    metadata: dict[str, str],
    success_url: str,
    cancel_url: str,
) -> RemoteCheckoutSession:
    params = {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": str(account_id),
        "line_items": [{"price": price_id, "quantity": quantity}],
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    with _translate_errors("checkout session create"):
        session = _client().v1.checkout.sessions.create(params)
    return _parse_session(session.to_dict())


def retrieve_checkout_session(session_id: str) -> RemoteCheckoutSession:
    with _translate_errors("checkout session retrieve"):
        session = _client().v1.checkout.sessions.retrieve(session_id)
    return _parse_session(session.to_dict())


def retrieve_subscription(subscription_id: str) -> RemoteSubscription:
    with _translate_errors("subscription retrieve"):
        subscription = _client().v1.subscriptions.retrieve(subscription_id)
    return parse_subscription(subscription.to_dict())


def update_item_quantity(
    *,
    subscription_id: str,
    item_id: str,
    quantity: int,
    proration_behavior: str,
    payment_behavior: str,
) -> RemoteSubscription:
    params = {
        "items": [{"id": item_id, "quantity": quantity}],
        "proration_behavior": proration_behavior,
        "payment_behavior": payment_behavior,
    }
    with _translate_errors("subscription update"):
        subscription = _client().v1.subscriptions.update(subscription_id, params)
    return parse_subscription(subscription.to_dict())


def create_portal_session(*, customer_id: str, return_url: str) -> str:
    with _translate_errors("billing portal session create"):
        session = _client().v1.billing_portal.sessions.create({"customer": customer_id, "return_url": return_url})
    return session.url


def list_invoices(*, customer_id: str, limit: int = 12) -> list[RemoteInvoice]:
    with _translate_errors("invoice list"):
        page = _client().v1.invoices.list({"customer": customer_id, "limit": limit})
    return [_parse_invoice(invoice.to_dict()) for invoice in page.data]


def construct_event(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """Verify the Stripe-Signature header (HMAC and a 5-minute timestamp tolerance), then parse."""
    if not settings.STRIPE_WEBHOOK_SECRET:
        raise BillingNotConfigured()
    if not signature:
        raise InvalidWebhook("Missing Stripe-Signature header")
    try:
        event = stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
    except stripe.SignatureVerificationError as error:
        raise InvalidWebhook(f"Invalid signature: {error.user_message or error}") from None
    except ValueError:
        raise InvalidWebhook("The payload is not JSON") from None
    data = event.to_dict()
    if not isinstance(data.get("id"), str) or not isinstance(data.get("type"), str):
        raise InvalidWebhook("The payload is not a Stripe event")
    return data
