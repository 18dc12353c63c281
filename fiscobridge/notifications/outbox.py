"""Queueing e-mails in the outbox (docs/notifications.md).

The change that an e-mail reports (an activation, a voided key) writes its OutboundEmail rows
in its own transaction, so the rows exist if and only if the change committed; an on-commit
hook then tries to send them.
"""

import logging

from django.db import transaction

from fiscobridge.notifications.compose import (
    Draft,
    account_recipients,
    email_context,
    package_phrase,
    partner_recipients,
    product_name,
    render_body,
    seats_phrase,
    utc_text,
)
from fiscobridge.notifications.models import EmailKind, OutboundEmail
from fiscobridge.notifications.sending import send_outbound
from fiscobridge.subscriptions.models import Subscription

logger = logging.getLogger("fiscobridge.notifications")


def queue_drafts(drafts: list[Draft], *, send_after_commit: bool = True) -> list[str]:
    """Write the drafts that have recipients; an existing dedupe key is left as it is."""
    rows = [
        OutboundEmail(
            kind=d.kind,
            dedupe_key=d.dedupe_key,
            recipients=d.recipients,
            subject=d.subject[:300],
            body=d.body,
            account=d.account,
            partner=d.partner,
            subscription=d.subscription,
        )
        for d in drafts
        if d.recipients
    ]
    # ON CONFLICT DO NOTHING (INSERT OR IGNORE on SQLite): of two runs queueing the same fact,
    # one row survives, and neither fails.
    OutboundEmail.objects.bulk_create(rows, ignore_conflicts=True)
    keys = [row.dedupe_key for row in rows]
    if keys and send_after_commit:
        transaction.on_commit(lambda: send_outbound(dedupe_keys=keys), robust=True)
    return keys


def _queue_safely(what: str, build) -> None:
    """Queue inside the caller's transaction without ever failing it: a broken e-mail must not
    cost a customer their activation. The savepoint drops a half-written outbox on error."""
    try:
        with transaction.atomic():
            queue_drafts(build())
    except Exception:
        logger.exception("e-mails for %s were not queued", what)


def queue_activation_emails(*, key, subscription: Subscription) -> None:
    """Call inside the redemption transaction: a receipt to the activating user and a notice to
    the issuing partner's users, sent once the activation commits."""

    def build() -> list[Draft]:
        account = subscription.account
        user = key.activated_by
        receipt_to = [user.email] if user is not None and user.is_active else account_recipients(account)
        renewal = subscription.renews
        context = email_context(
            subscription,
            key,
            activated_at=utc_text(key.activated_at),
            renewal=renewal,
            renewal_expires=utc_text(renewal.expires_at) if renewal else "",
        )
        return [
            Draft(
                kind=EmailKind.ACTIVATION_RECEIPT,
                dedupe_key=f"key:{key.pk}:activated:customer",
                recipients=receipt_to,
                account=account,
                partner=key.partner,
                subscription=subscription,
                subject=f"Activation receipt: {package_phrase(subscription)} until {subscription.expires_at:%Y-%m-%d}",
                body=render_body("activation_receipt", context),
            ),
            Draft(
                kind=EmailKind.KEY_ACTIVATED,
                dedupe_key=f"key:{key.pk}:activated:partner",
                recipients=partner_recipients(key.partner),
                account=account,
                partner=key.partner,
                subscription=subscription,
                subject=f"Key {key.hint} was activated by {account.name}",
                body=render_body("key_activated", context),
            ),
        ]

    _queue_safely(f"the activation of key {key.pk}", build)


def queue_key_voided_emails(*, key) -> None:
    """Call in the transaction that voids the key: the customer and the partner are told."""

    def build() -> list[Draft]:
        subscription = key.subscription
        context = email_context(subscription, key, voided_at=utc_text(key.voided_at), reason=key.voided_reason)
        account = key.activated_account
        return [
            Draft(
                kind=EmailKind.KEY_VOIDED,
                dedupe_key=f"key:{key.pk}:voided:customer",
                recipients=account_recipients(account),
                account=account,
                partner=key.partner,
                subscription=subscription,
                subject=f"Your {product_name(subscription)} subscription ({seats_phrase(subscription)}) has ended",
                body=render_body("key_voided", context),
            ),
            Draft(
                kind=EmailKind.KEY_VOIDED_PARTNER,
                dedupe_key=f"key:{key.pk}:voided:partner",
                recipients=partner_recipients(key.partner),
                account=account,
                partner=key.partner,
                subscription=subscription,
                subject=f"Key {key.hint} was voided by FiscoBridge",
                body=render_body("key_voided_partner", context),
            ),
        ]

    _queue_safely(f"voiding key {key.pk}", build)
