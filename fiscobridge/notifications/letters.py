"""The e-mails about a key's events, composed (not yet stored or sent), and storing drafts."""

from dataclasses import dataclass

from fiscobridge.core.localtime import local_date
from fiscobridge.notifications.compose import (
    Draft,
    account_recipients,
    account_zone,
    email_context,
    local_text,
    package_phrase,
    partner_recipients,
    partner_zone,
    product_name,
    render_body,
    seats_phrase,
)
from fiscobridge.notifications.models import EmailKind, OutboundEmail
from fiscobridge.subscriptions.models import Subscription


def store_drafts(drafts: list[Draft]) -> list[str]:
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
    return [row.dedupe_key for row in rows]


@dataclass(frozen=True)
class Letter:
    """One of the two e-mails about a key event: its kind, recipients, subject, template and the
    time zone its moments are written in (the recipients' tenant's)."""

    kind: str
    recipients: list[str]
    subject: str
    template: str
    time_zone: str | None


def _key_event_drafts(*, key, subscription, event: str, context_in, customer: Letter, partner: Letter):
    """The two e-mails about one event of a key, to the customer and to the issuing partner;
    each is sent once (its dedupe key names the key, the event and the audience). `context_in`
    gives the template context in a time zone: the customer and the partner may live in
    different ones."""
    return [
        Draft(
            kind=letter.kind,
            dedupe_key=f"key:{key.pk}:{event}:{audience}",
            recipients=letter.recipients,
            account=subscription.account,
            partner=key.partner,
            subscription=subscription,
            subject=letter.subject,
            body=render_body(letter.template, context_in(letter.time_zone)),
        )
        for audience, letter in (("customer", customer), ("partner", partner))
    ]


def activation_drafts(*, subscription: Subscription) -> list[Draft]:
    """A receipt to the activating user and a notice to the issuing partner's users."""
    key = subscription.activation_key
    account = subscription.account
    user = key.activated_by
    receipt_to = [user.email] if user is not None and user.is_active else account_recipients(account)
    renewal = subscription.renews

    def context_in(time_zone):
        return email_context(
            subscription,
            key,
            time_zone=time_zone,
            activated_at=local_text(key.activated_at, time_zone),
            renewal=renewal,
            renewal_expires=local_text(renewal.expires_at, time_zone) if renewal else "",
        )

    # The last day the seats run, as the customer counts days (ISO, as before: sortable in a mailbox).
    until = local_date(subscription.expires_at, account_zone(account)).isoformat()
    return _key_event_drafts(
        key=key,
        subscription=subscription,
        event="activated",
        context_in=context_in,
        customer=Letter(
            EmailKind.ACTIVATION_RECEIPT,
            receipt_to,
            f"Activation receipt: {package_phrase(subscription)} until {until}",
            "activation_receipt",
            account_zone(account),
        ),
        partner=Letter(
            EmailKind.KEY_ACTIVATED,
            partner_recipients(key.partner),
            f"Key {key.hint} was activated by {account.name}",
            "key_activated",
            partner_zone(key.partner),
        ),
    )


def key_voided_drafts(*, key) -> list[Draft]:
    """The customer and the partner are told that staff voided the key."""
    subscription = key.subscription

    def context_in(time_zone):
        return email_context(
            subscription,
            key,
            time_zone=time_zone,
            voided_at=local_text(key.voided_at, time_zone),
            reason=key.voided_reason,
        )

    return _key_event_drafts(
        key=key,
        subscription=subscription,
        event="voided",
        context_in=context_in,
        customer=Letter(
            EmailKind.KEY_VOIDED,
            account_recipients(key.activated_account),
            f"Your {product_name(subscription)} subscription ({seats_phrase(subscription)}) has ended",
            "key_voided",
            account_zone(key.activated_account),
        ),
        partner=Letter(
            EmailKind.KEY_VOIDED_PARTNER,
            partner_recipients(key.partner),
            f"Key {key.hint} was voided by FiscoBridge",
            "key_voided_partner",
            partner_zone(key.partner),
        ),
    )
