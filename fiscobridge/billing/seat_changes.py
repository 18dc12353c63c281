"""Changing the seats of a Stripe subscription, with proration, never below the seats in use."""

from django.db import transaction

from fiscobridge.accounts.locks import lock_account
from fiscobridge.billing import stripe_gateway as gateway
from fiscobridge.billing.config import stripe_enabled, valid_seats
from fiscobridge.billing.errors import (
    BillingNotConfigured,
    SeatsInUse,
    SubscriptionNotChangeable,
)
from fiscobridge.billing.sync import (
    CHANGEABLE_STATUSES,
    PAST_DUE_STATUSES,
    apply_remote_subscription,
)
from fiscobridge.core.errors import NotFound
from fiscobridge.seats import seats_of_package
from fiscobridge.subscriptions.models import Source, Status, Subscription


def change_stripe_seats(*, account, subscription: Subscription, seats, actor, ip=None) -> Subscription:
    """Set the quantity of a Stripe subscription item, with proration.

    Refused below the seats in use. The account lock is held across the Stripe call, so no
    certificate upload or connection can take a seat between the check and the change; if Stripe
    refuses or cannot be reached, the transaction rolls back and nothing has changed anywhere.
    An increase is invoiced at once and must be paid (`error_if_incomplete`: a declined card
    leaves the subscription as it was); a decrease is credited on the next invoice.
    """
    if not stripe_enabled():
        raise BillingNotConfigured()
    seats = valid_seats(seats)
    with transaction.atomic():
        lock_account(account)
        row = Subscription.objects.filter(pk=subscription.pk, account=account, source=Source.STRIPE).first()
        if row is None:
            raise NotFound()
        if row.stripe_status in PAST_DUE_STATUSES:
            raise SubscriptionNotChangeable(
                "This subscription has an unpaid invoice. Pay it with Manage in Stripe, then change the seats."
            )
        if row.status != Status.ACTIVE or row.stripe_status not in CHANGEABLE_STATUSES:
            raise SubscriptionNotChangeable()
        if seats == row.seats:
            return row
        if seats < row.seats:
            package = seats_of_package(account, product=row.product, tier=row.tier)
            minimum = package.used - (package.total - row.seats)  # what this row must keep so that used <= total
            if seats < minimum:
                raise SeatsInUse(in_use=package.used, minimum=minimum)
        increase = seats > row.seats
        remote = gateway.update_item_quantity(
            subscription_id=row.stripe_subscription_id,
            item_id=row.stripe_item_id,
            quantity=seats,
            proration_behavior="always_invoice" if increase else "create_prorations",
            payment_behavior="error_if_incomplete" if increase else "allow_incomplete",
        )
        apply_remote_subscription(account=account, remote=remote, actor=actor, ip=ip)
        row.refresh_from_db()
    return row
