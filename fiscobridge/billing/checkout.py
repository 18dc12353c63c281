"""Buying online: the account's Stripe customer, Checkout Sessions and the Customer Portal.

Nothing is granted here: seats arrive with the webhooks once Stripe has taken the payment.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from fiscobridge.accounts.locks import lock_account
from fiscobridge.audit.services import record_event
from fiscobridge.billing import stripe_gateway as gateway
from fiscobridge.billing.config import find_plan, stripe_enabled, valid_seats
from fiscobridge.billing.errors import (
    BillingNotConfigured,
    NoStripeCustomer,
    PlanNotAvailable,
)
from fiscobridge.billing.models import CheckoutSession, StripeCustomer
from fiscobridge.subscriptions.models import Product


def _public_url(name: str) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + reverse(name)


def ensure_stripe_customer(*, account, actor) -> StripeCustomer:
    """The account's Stripe customer, created on first use (under the account lock: one per account)."""
    existing = StripeCustomer.objects.filter(account=account).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        lock_account(account)
        existing = StripeCustomer.objects.filter(account=account).first()
        if existing is not None:
            return existing
        customer_id = gateway.create_customer(name=account.name, email=actor.email, account_id=account.pk)
        customer = StripeCustomer.objects.create(account=account, customer_id=customer_id)
        record_event(action="billing.customer_created", actor=actor, account=account, target=customer)
    return customer


@dataclass(frozen=True)
class StartedCheckout:
    checkout: CheckoutSession
    url: str  # Stripe's hosted Checkout page: the browser goes there next


def start_checkout(*, account, actor, product: str, tier: str, seats, interval: str, ip=None) -> StartedCheckout:
    """Create a Stripe Checkout Session (subscription mode, quantity = seats) for this account.

    Nothing is granted here: seats arrive with the webhooks once Stripe has taken the payment.
    """
    if not stripe_enabled():
        raise BillingNotConfigured()
    seats = valid_seats(seats)
    tier = "" if product == Product.POS else tier
    plan = find_plan(product=product, tier=tier, interval=interval)
    if plan is None:
        raise PlanNotAvailable()
    customer = ensure_stripe_customer(account=account, actor=actor)
    metadata = {"account_id": str(account.pk), "product": product, "tier": tier, "interval": interval}
    remote = gateway.create_checkout_session(
        customer_id=customer.customer_id,
        price_id=plan.price_id,
        quantity=seats,
        account_id=account.pk,
        metadata=metadata,
        # Stripe fills in {CHECKOUT_SESSION_ID}; the success page finds the session by it.
        success_url=_public_url("billing_checkout_success") + "?session_id={CHECKOUT_SESSION_ID}",
        cancel_url=_public_url("billing_checkout_cancelled") + f"?product={product}",
    )
    checkout = CheckoutSession.objects.create(
        session_id=remote.id,
        account=account,
        started_by=actor if getattr(actor, "pk", None) else None,
        product=product,
        tier=tier,
        seats=seats,
        interval=interval,
        price_id=plan.price_id,
    )
    record_event(
        action="billing.checkout_started",
        actor=actor,
        account=account,
        target=checkout,
        ip=ip,
        details={"product": product, "tier": tier, "seats": seats, "interval": interval},
    )
    return StartedCheckout(checkout=checkout, url=remote.url)


def open_customer_portal(*, account, actor, ip=None) -> str:
    """A Stripe Customer Portal session for the account's own customer; returns its URL."""
    if not stripe_enabled():
        raise BillingNotConfigured()
    customer = StripeCustomer.objects.filter(account=account).first()
    if customer is None:
        raise NoStripeCustomer()
    url = gateway.create_portal_session(customer_id=customer.customer_id, return_url=_public_url("subscriptions"))
    record_event(action="billing.portal_opened", actor=actor, account=account, target=customer, ip=ip)
    return url
