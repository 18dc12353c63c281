"""Cloud POS work for the task queue."""

from django_tasks import task

from fiscobridge.notifications.sending import send_outbound
from fiscobridge.pos.expiry_reminders import queue_due_certificate_reminders


@task()
def queue_and_send_certificate_expiry_reminders() -> dict:
    """Periodic: the certificate expiry e-mails that are due (pos/expiry_reminders.py), then
    everything pending (a failed send stays pending for the next sweep)."""
    queued = queue_due_certificate_reminders()
    report = send_outbound()
    return {"queued": queued, "sent": report.sent, "failed": report.failed}
