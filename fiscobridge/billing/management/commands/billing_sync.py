"""Re-read every Stripe subscription we know and bring its rows up to date.

Webhooks keep the rows current; this is for after an outage of the webhook endpoint longer than
Stripe's retries (three days), or after changing a STRIPE_PRICE_* setting.
"""

from django.core.management.base import BaseCommand, CommandError

from fiscobridge.billing.sync import resync_all


class Command(BaseCommand):
    help = "Re-read every known Stripe subscription from Stripe and update its seats and dates."

    def handle(self, *args, **options):
        synced, failed = resync_all(stdout=self.stdout)
        self.stdout.write(f"{synced} Stripe subscription{'s' if synced != 1 else ''} synced")
        if failed:
            raise CommandError(f"{failed} could not be synced (see above)")
