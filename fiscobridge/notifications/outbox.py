"""Queueing e-mails in the outbox (docs/notifications.md).

The change that an e-mail reports (an activation, a voided key) writes its OutboundEmail rows
in its own transaction, so the rows exist if and only if the change committed; an on-commit
hook then tries to send them.
"""

import logging
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Letter:
    """One of the two e-mails about a key event: its kind, recipients, subject and template."""

    kind: str
    recipients: list[str]
    subject: str
    template: str


def _key_event_drafts(*, key, subscription, event: str, context: dict, customer: Letter, partner: Letter):
    """The two e-mails about one event of a key, to the customer and to the issuing partner;
    each is sent once (its dedupe key names the key, the event and the audience)."""
    return [
        Draft(
            kind=letter.kind,
            dedupe_key=f"key:{key.pk}:{event}:{audience}",
            recipients=letter.recipients,
            account=subscription.account,
            partner=key.partner,
            subscription=subscription,
            subject=letter.subject,
            body=render_body(letter.template, context),
        )
        for audience, letter in (("customer", customer), ("partner", partner))
    ]


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
        until = f"{subscription.expires_at:%Y-%m-%d}"
        return _key_event_drafts(
            key=key,
            subscription=subscription,
            event="activated",
            context=context,
            customer=Letter(
                EmailKind.ACTIVATION_RECEIPT,
                receipt_to,
                f"Activation receipt: {package_phrase(subscription)} until {until}",
                "activation_receipt",
            ),
            partner=Letter(
                EmailKind.KEY_ACTIVATED,
                partner_recipients(key.partner),
                f"Key {key.hint} was activated by {account.name}",
                "key_activated",
            ),
        )

    _queue_safely(f"the activation of key {key.pk}", build)


def queue_key_voided_emails(*, key) -> None:
    """Call in the transaction that voids the key: the customer and the partner are told."""

    def build() -> list[Draft]:
        subscription = key.subscription
        context = email_context(subscription, key, voided_at=utc_text(key.voided_at), reason=key.voided_reason)
        return _key_event_drafts(
            key=key,
            subscription=subscription,
            event="voided",
            context=context,
            customer=Letter(
                EmailKind.KEY_VOIDED,
                account_recipients(key.activated_account),
                f"Your {product_name(subscription)} subscription ({seats_phrase(subscription)}) has ended",
                "key_voided",
            ),
            partner=Letter(
                EmailKind.KEY_VOIDED_PARTNER,
                partner_recipients(key.partner),
                f"Key {key.hint} was voided by FiscoBridge",
                "key_voided_partner",
            ),
        )

    _queue_safely(f"voiding key {key.pk}", build)
