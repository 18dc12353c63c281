from ninja import Router

from fiscobridge.accounts.scopes import Scope
from fiscobridge.api.auth import customer_account, scoped
from fiscobridge.api.presenters import subscription_dict
from fiscobridge.api.schemas import ErrorOut, SubscriptionsOut
from fiscobridge.seats import int_seats, pos_seats
from fiscobridge.subscriptions.models import Product, Subscription

router = Router(tags=["Subscriptions"])


@router.get("", auth=scoped(Scope.READ), response={200: SubscriptionsOut, 401: ErrorOut, 403: ErrorOut})
def list_subscriptions(request):
    """Seats per product (and Integrations tier) and every subscription of your account."""
    account = customer_account(request)
    subs = list(Subscription.objects.for_account(account).order_by("-started_at", "-id"))
    pos = pos_seats(account)
    integrations = int_seats(account)
    allowance = integrations.trial_allowance
    return {
        "pos": {
            "seats_total": pos.total,
            "seats_used": pos.used,
            "subscriptions": [subscription_dict(s) for s in subs if s.product == Product.POS],
        },
        "int": {
            "tiers": {
                tier: {"seats_total": seats.total, "seats_used": seats.used}
                for tier, seats in integrations.tiers.items()
            },
            "trial": None
            if allowance is None
            else {
                "seats_total": integrations.trial.total,
                "seats_used": integrations.trial.used,
                "invoices_per_month": allowance.invoices_per_month,
            },
            "subscriptions": [subscription_dict(s) for s in subs if s.product == Product.INT],
        },
    }
