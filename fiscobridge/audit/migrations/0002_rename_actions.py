"""Audit action names follow one pattern (`key.activation_failed`, not `key.activate.failed`)."""

from django.db import migrations

# Frozen here: a migration must not change when the application's names change later.
RENAMED = {
    "key.validate.succeeded": "key.validated",
    "key.validate.failed": "key.validation_failed",
    "key.activate.failed": "key.activation_failed",
    "billing.checkout.completed": "billing.checkout_completed",
    "billing.checkout.started": "billing.checkout_started",
    "billing.customer.created": "billing.customer_created",
    "billing.portal.opened": "billing.portal_opened",
    "stripe.event.failed": "stripe.event_failed",
    "stripe.event.handled": "stripe.event_handled",
}


def rename(apps, mapping):
    Event = apps.get_model("audit", "Event")
    for old, new in mapping.items():
        Event.objects.filter(action=old).update(action=new)


def forwards(apps, schema_editor):
    rename(apps, RENAMED)


def backwards(apps, schema_editor):
    rename(apps, {new: old for old, new in RENAMED.items()})


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
