from ninja import Router

from fiscobridge.api.auth import customer_account
from fiscobridge.api.presenters import subscription_dict
from fiscobridge.api.schemas import ErrorOut, SubscriptionsOut
from fiscobridge.integrations.usage import active_connections_by_tier
from fiscobridge.pos.usage import active_certificate_count
from fiscobridge.subscriptions.capacity import int_capacity_by_tier, int_trial, pos_capacity
from fiscobridge.subscriptions.models import Product, Subscription

router = Router(tags=["Subscriptions"])


@router.get("", response={200: SubscriptionsOut, 401: ErrorOut, 403: ErrorOut})
def list_subscriptions(request):
    """Seats per product (and Integrations tier) and every subscription of your account."""
    account = customer_account(request)
    subs = list(Subscription.objects.for_account(account).order_by("-started_at", "-id"))
    connections = active_connections_by_tier(account)
    trial = int_trial(account)
    return {
        "pos": {
            "seats_total": pos_capacity(account),
            "seats_used": active_certificate_count(account),
            "subscriptions": [subscription_dict(s) for s in subs if s.product == Product.POS],
        },
        "int": {
            "tiers": {
                tier: {"seats_total": total, "seats_used": connections.get(tier, 0)}
                for tier, total in int_capacity_by_tier(account).items()
            },
            "trial": None if trial is None else {
                "seats_total": trial.connections, "seats_used": connections.get("trial", 0),
                "invoices_per_month": trial.invoices_per_month,
            },
            "subscriptions": [subscription_dict(s) for s in subs if s.product == Product.INT],
        },
    }
