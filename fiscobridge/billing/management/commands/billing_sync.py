"""Re-read every Stripe subscription we know and bring its rows up to date.

Webhooks keep the rows current; this is for after an outage of the webhook endpoint longer than
Stripe's retries (three days), or after changing a STRIPE_PRICE_* setting.
"""

from django.core.management.base import BaseCommand, CommandError

from fiscobridge.billing.services import resync_all
from fiscobridge.core.errors import DomainError


class Command(BaseCommand):
    help = "Re-read every known Stripe subscription from Stripe and update its seats and dates."

    def handle(self, *args, **options):
        try:
            count = resync_all(stdout=self.stdout)
        except DomainError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"{count} Stripe subscription{'s' if count != 1 else ''} synced")
