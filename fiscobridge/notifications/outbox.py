"""Queueing e-mails (docs/notifications.md).

The change that an e-mail reports (an activation, a voided key) enqueues its e-mail work in its
own transaction, so the work exists if and only if the change committed; the task worker then
composes (where needed) and sends it.
"""

import logging

from django.db import transaction

from fiscobridge.notifications.compose import Draft
from fiscobridge.notifications.letters import key_voided_drafts, store_drafts
from fiscobridge.notifications.tasks import send_activation_emails, send_emails
from fiscobridge.subscriptions.models import Subscription
from fiscobridge.tasks.queue import enqueue_with_transaction, task_row

logger = logging.getLogger("fiscobridge.notifications")


def queue_drafts(drafts: list[Draft]) -> list[str]:
    """Store the drafts and enqueue their sending, both in the caller's transaction."""
    keys = store_drafts(drafts)
    if keys:
        enqueue_with_transaction(send_emails, keys)
    return keys


def _queue_safely(what: str, build) -> None:
    """Queue inside the caller's transaction without ever failing it: a broken e-mail must not
    cost a customer their activation. The savepoint drops a half-written outbox on error."""
    try:
        with transaction.atomic():
            queue_drafts(build())
    except Exception:
        logger.exception("e-mails for %s were not queued", what)


def activation_emails_task(*, subscription: Subscription):
    """The task that composes and sends an activation's receipt and the partner's notice, as an
    unsaved task row for the redemption transaction to insert with its final writes (so it
    exists exactly when the activation commits), then `announce`. Nothing is rendered or sent
    while the customer waits. With a task backend other than the database, the task is enqueued
    after the commit instead, and None is returned."""
    row = task_row(send_activation_emails, subscription.pk)
    if row is None:
        enqueue_with_transaction(send_activation_emails, subscription.pk)
    return row


def queue_key_voided_emails(*, key) -> None:
    """Call in the transaction that voids the key: the customer and the partner are told."""
    _queue_safely(f"voiding key {key.pk}", lambda: key_voided_drafts(key=key))
