from ninja import Router

from fiscobridge.accounts.scopes import Scope
from fiscobridge.api.answers import json_answer
from fiscobridge.api.auth import requester_for, scoped
from fiscobridge.api.presenters import subscription_dict
from fiscobridge.api.schemas import (
    ActivatedOut,
    ActivateIn,
    ErrorOut,
    KeyIn,
    PreviewOut,
)
from fiscobridge.keys.redemption import activate_key, validate_key

router = Router(tags=["Activation keys (customer)"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut}


@router.post("/validate", auth=scoped(Scope.KEYS_REDEEM), response={200: PreviewOut, **ERRORS})
def validate(request, payload: KeyIn):
    """Preview a key: what it grants and the dates it would run, with renewal options. Changes nothing."""
    preview = validate_key(requester=requester_for(request), raw=payload.key, product=payload.product)
    key = preview.key
    return json_answer(
        {
            "product": key.product,
            "tier": key.tier or None,
            "seats": key.seats,
            "months": key.months,
            "key_hint": key.hint,
            "starts_at": preview.starts_at,
            "expires_at": preview.expires_at,
            "seats_total_after": preview.seats_total_after,
            "renewal_options": [
                {
                    "subscription_id": o.subscription_id,
                    "current_expires_at": o.current_expires_at,
                    "starts_at": o.starts_at,
                    "expires_at": o.expires_at,
                }
                for o in preview.renewal_options
            ],
        }
    )


@router.post("/activate", auth=scoped(Scope.KEYS_REDEEM), response={201: ActivatedOut, **ERRORS})
def activate(request, payload: ActivateIn):
    """Redeem a key for your account. Its seats are usable at once (or when a renewal starts)."""
    subscription = activate_key(
        requester=requester_for(request), raw=payload.key, product=payload.product, renew=payload.renew
    )
    return json_answer({"subscription": subscription_dict(subscription)}, status=201)
