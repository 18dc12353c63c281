from ninja import Field as NinjaField
from ninja import Query, Router, Schema
from ninja.responses import Status

from fiscobridge.accounts.scopes import Scope
from fiscobridge.api.auth import partner_of, scoped
from fiscobridge.api.presenters import batch_dict, key_item_dict
from fiscobridge.api.schemas import (
    ErrorOut,
    IssuedOut,
    IssueIn,
    KeyItemOut,
    KeyPageOut,
    LookupIn,
    ProductIn,
    RevokeIn,
)
from fiscobridge.core.net import client_ip
from fiscobridge.keys.codes import KeyFormatError, is_full_key, search_term
from fiscobridge.keys.errors import InvalidKeyFormat, KeyInQuery
from fiscobridge.keys.issuance import issue_keys
from fiscobridge.keys.models import KeyDisplayStatus
from fiscobridge.keys.queries import (
    get_key_for_partner,
    lookup_key_for_partner,
    search_keys,
)
from fiscobridge.keys.services import revoke_key
from fiscobridge.web.cursor import decode_cursor, encode_cursor

router = Router(tags=["Activation keys (partner)"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


@router.post("", auth=scoped(Scope.PARTNER_KEYS), response={201: IssuedOut, **ERRORS})
def issue(request, payload: IssueIn):
    """Issue a batch of keys. The response is the only time the codes ever leave the system."""
    issued = issue_keys(
        partner=partner_of(request),
        actor=request.user,
        product=payload.product,
        tier=payload.tier or "",
        seats=payload.seats,
        months=payload.months,
        quantity=payload.quantity,
        reference=payload.reference,
        redeem_by=payload.redeem_by,
        ip=client_ip(request),
    )
    return Status(201, {"batch": batch_dict(issued.batch), "keys": [{"id": k.id, "code": k.code} for k in issued.keys]})


class ListFilters(Schema):
    status: str | None = NinjaField(None, description=" | ".join(KeyDisplayStatus.values))
    product: ProductIn | None = None
    tier: str | None = NinjaField(None, max_length=10)
    batch: int | None = None
    q: str | None = NinjaField(None, max_length=200, description="A key hint (last group) or reference text")
    cursor: str | None = NinjaField(None, max_length=64)
    limit: int = NinjaField(50, ge=1, le=200)


@router.get("", auth=scoped(Scope.PARTNER_KEYS, Scope.READ), response={200: KeyPageOut, **ERRORS})
def list_keys(request, filters: Query[ListFilters]):
    """Your keys, newest first, by keyset pagination: pass `next_cursor` back as `cursor`."""
    partner = partner_of(request)
    if filters.q and is_full_key(filters.q):
        raise KeyInQuery()
    before = decode_cursor(filters.cursor) if filters.cursor else None
    keys, has_more = search_keys(
        partner,
        status=filters.status,
        product=filters.product,
        tier=filters.tier,
        batch=filters.batch,
        q=search_term(filters.q) if filters.q else None,
        before_id=before,
        limit=filters.limit,
    )
    return {
        "items": [key_item_dict(k) for k in keys],
        "next_cursor": encode_cursor(keys[-1].pk) if has_more else None,
    }


@router.post("/lookup", auth=scoped(Scope.PARTNER_KEYS, Scope.READ), response={200: KeyItemOut, **ERRORS})
def lookup(request, payload: LookupIn):
    """Find one of your keys by its full code (the code is hashed, never stored or logged)."""
    partner = partner_of(request)
    try:
        key = lookup_key_for_partner(partner, payload.key)
    except KeyFormatError as error:
        raise InvalidKeyFormat(product="pos", problem=error.problem) from None
    return key_item_dict(key)


@router.post("/{int:key_id}/revoke", auth=scoped(Scope.PARTNER_KEYS), response={200: KeyItemOut, **ERRORS})
def revoke(request, key_id: int, payload: RevokeIn):
    """Withdraw a key that has not been activated. An activated key cannot be revoked."""
    key = get_key_for_partner(partner_of(request), key_id)
    return key_item_dict(revoke_key(key=key, reason=payload.reason, actor=request.user, ip=client_ip(request)))
