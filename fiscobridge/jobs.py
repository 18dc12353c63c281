"""The periodic jobs that `fiscobridge worker` enqueues (docs/tasks.md): one list, one place."""

from datetime import timedelta

from django_tasks import task

from fiscobridge.api.tasks import prune_idempotent_requests
from fiscobridge.billing.tasks import resync_stripe_subscriptions
from fiscobridge.keys.tasks import fold_dashboard_activations
from fiscobridge.notifications.tasks import queue_and_send_reminders, send_pending_emails
from fiscobridge.partners.tasks import forget_unclaimed_batch_codes
from fiscobridge.pos.tasks import queue_and_send_certificate_expiry_reminders
from fiscobridge.prune import prune
from fiscobridge.tasks.housekeeping import recover_lost_tasks
from fiscobridge.tasks.schedule import PeriodicJob
from fiscobridge.webhooks.tasks import deliver_due_webhooks, emit_subscription_endings


@task()
def prune_old_rows() -> dict[str, int]:
    """Periodic: what `fiscobridge prune` does (fiscobridge/prune.py)."""
    return prune()


PERIODIC_JOBS = [
    PeriodicJob("send-pending-emails", send_pending_emails, timedelta(minutes=5)),
    PeriodicJob("subscription-reminders", queue_and_send_reminders, timedelta(hours=1)),
    PeriodicJob("certificate-expiry-reminders", queue_and_send_certificate_expiry_reminders, timedelta(hours=1)),
    PeriodicJob("stripe-resync", resync_stripe_subscriptions, timedelta(hours=6)),
    PeriodicJob("prune", prune_old_rows, timedelta(days=1)),
    PeriodicJob("recover-lost-tasks", recover_lost_tasks, timedelta(minutes=5)),
    PeriodicJob("prune-idempotency-keys", prune_idempotent_requests, timedelta(hours=1)),
    PeriodicJob("forget-unclaimed-batch-codes", forget_unclaimed_batch_codes, timedelta(hours=1)),
    # The safety net behind each delivery's own task (docs/webhooks.md).
    PeriodicJob("deliver-due-webhooks", deliver_due_webhooks, timedelta(minutes=1)),
    PeriodicJob("subscription-ending-webhooks", emit_subscription_endings, timedelta(hours=1)),
    # The partner dashboards' pending activations (keys/rollup.py).
    PeriodicJob("fold-dashboard-activations", fold_dashboard_activations, timedelta(minutes=1)),
]
