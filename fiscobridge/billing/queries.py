"""Reads for the pages: always starting from the account, so another tenant's object is not found."""

from fiscobridge.billing import stripe_gateway as gateway
from fiscobridge.billing.config import stripe_enabled
from fiscobridge.billing.models import CheckoutSession, StripeCustomer
from fiscobridge.core.errors import NotFound
from fiscobridge.subscriptions.models import Source, Subscription


def get_checkout_for_account(account, session_id: str) -> CheckoutSession:
    checkout = CheckoutSession.objects.filter(account=account, session_id=session_id[:255]).first()
    if checkout is None:
        raise NotFound()
    return checkout


def get_stripe_subscription_for_account(account, pk) -> Subscription:
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise NotFound() from None
    subscription = Subscription.objects.filter(account=account, source=Source.STRIPE, pk=pk).first()
    if subscription is None:
        raise NotFound()
    return subscription


def checkout_subscriptions(checkout: CheckoutSession) -> list[Subscription]:
    if not checkout.stripe_subscription_id:
        return []
    return list(
        Subscription.objects.filter(
            account=checkout.account,
            source=Source.STRIPE,
            stripe_subscription_id=checkout.stripe_subscription_id,
        ).order_by("id")
    )


def has_stripe_customer(account) -> bool:
    return StripeCustomer.objects.filter(account=account).exists()


def invoices_for_account(account, *, limit: int = 12) -> list[gateway.RemoteInvoice]:
    """The account's Stripe invoices, newest first; empty when it never bought online.

    Raises StripeUnavailable when Stripe does not answer (the page shows a notice).
    """
    customer = StripeCustomer.objects.filter(account=account).first()
    if customer is None or not stripe_enabled():
        return []
    return gateway.list_invoices(customer_id=customer.customer_id, limit=limit)
