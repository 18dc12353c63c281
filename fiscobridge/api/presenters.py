"""Model → API dict. Formatting only."""

from fiscobridge.integrations.queries import TierMonth
from fiscobridge.keys.models import ActivationKey, KeyBatch
from fiscobridge.subscriptions.models import Subscription


def subscription_dict(sub: Subscription) -> dict:
    return {
        "id": sub.pk,
        "product": sub.product,
        "tier": sub.tier or None,
        "seats": sub.seats,
        "source": sub.source,
        "key_hint": sub.key_hint or None,
        "started_at": sub.started_at,
        "expires_at": sub.expires_at,
        "status": sub.status,
    }


def batch_dict(batch: KeyBatch) -> dict:
    return {
        "id": batch.pk,
        "product": batch.product,
        "tier": batch.tier or None,
        "seats": batch.seats,
        "months": batch.months,
        "quantity": batch.quantity,
        "reference": batch.reference,
        "redeem_by": batch.redeem_by,
        "created_at": batch.created_at,
    }


def key_item_dict(key: ActivationKey) -> dict:
    return {
        "id": key.pk,
        "hint": key.hint,
        "product": key.product,
        "tier": key.tier or None,
        "seats": key.seats,
        "months": key.months,
        "status": key.display_status,
        "reference": key.reference,
        "batch": key.batch_id,
        "created_at": key.created_at,
        "activated_at": key.activated_at,
        "activated_account": key.activated_account.name if key.activated_account_id else None,
        "revoked_at": key.revoked_at,
    }


def connection_dict(connection, *, usage: TierMonth) -> dict:
    return {
        "uid": connection.uid,
        "type": connection.type,
        "tier": connection.tier,
        "name": connection.name,
        "status": connection.status,
        "created_at": connection.created_at,
        "invoices_this_month": usage.used,
        "invoice_limit": usage.limit,
        "can_sync": connection.status == "active" and usage.available,
    }


def certificate_dict(certificate, *, can_sign: bool) -> dict:
    return {
        "uid": certificate.uid,
        "taxpayer": certificate.taxpayer,
        "location": certificate.location,
        "pac": certificate.pac,
        "serial": certificate.serial,
        "fingerprint": certificate.fingerprint,
        "not_after": certificate.not_after,
        "status": certificate.display_status,
        "can_sign": can_sign,
    }


def entitlement_dict(entitlement) -> dict:
    return {"can_sign": entitlement.can_sign, "reason": entitlement.reason}


def lease_dict(lease) -> dict:
    return {"lease": lease.token, "expires_at": lease.expires_at}
