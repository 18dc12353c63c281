"""Audit actions: their names and the words people read for them.

Names follow one pattern, `<noun>.<what happened>` in snake_case: `key.activated`,
`key.activation_failed`, `billing.checkout_started`. One label per action serves the Client
Portal's Activity page and the Partner Portal's key history alike.
"""

ACTION_LABELS = {
    "account.created": "Account created",
    "account.time_zone_changed": "Time zone changed",
    "api_token.created": "API token created",
    "api_token.revoked": "API token revoked",
    "billing.checkout_completed": "Checkout completed",
    "billing.checkout_started": "Checkout started",
    "billing.customer_created": "Stripe customer created",
    "billing.portal_opened": "Opened Manage in Stripe",
    "certificate.revoked": "Certificate revoked",
    "certificate.uploaded": "Certificate uploaded",
    "connection.created": "Connection created",
    "connection.removed": "Connection removed",
    "key.activated": "Key activated",
    "key.activation_failed": "Key activation failed",
    "key.email_failed": "E-mail to a customer failed",
    "key.emailed": "E-mailed to a customer",
    "key.issued": "Key issued",
    "key.revoked": "Key revoked",
    "key.validated": "Key validated",
    "key.validation_failed": "Key validation failed",
    "key.voided": "Key voided by FiscoBridge",
    "lease.issued": "Offline lease issued",
    "login.succeeded": "Signed in",
    "partner.time_zone_changed": "Time zone changed",
    "partner.two_factor_not_required": "Two-factor sign-in no longer required",
    "partner.two_factor_required": "Two-factor sign-in required",
    "redeem.locked_out": "Key attempts locked",
    "signing_key.rotated": "Lease signing key rotated",
    "stripe.event_handled": "Stripe event applied",
    "subscription.changed": "Subscription changed",
    "subscription.created": "Subscription created",
    "subscription.ended": "Subscription ended",
    "two_factor.code_rejected": "Wrong two-factor code",
    "two_factor.disabled": "Two-factor sign-in turned off",
    "webhook_delivery.resent": "Webhook event sent again",
    "webhook_endpoint.changed": "Webhook endpoint changed",
    "webhook_endpoint.created": "Webhook endpoint added",
    "webhook_endpoint.deleted": "Webhook endpoint deleted",
    "two_factor.enabled": "Two-factor sign-in turned on",
    "two_factor.recovery_code_used": "Recovery code used to sign in",
    "two_factor.recovery_codes_regenerated": "New recovery codes made",
    "two_factor.reset": "Two-factor sign-in reset by FiscoBridge",
}


def redemption_action(action: str, *, succeeded: bool) -> str:
    """The event of one validate or activate attempt: `key.validated`, `key.activation_failed`, …"""
    if succeeded:
        return {"validate": "key.validated", "activate": "key.activated"}[action]
    return {"validate": "key.validation_failed", "activate": "key.activation_failed"}[action]


def action_label(action: str) -> str:
    return ACTION_LABELS.get(action) or action.replace(".", " ").replace("_", " ").capitalize()
