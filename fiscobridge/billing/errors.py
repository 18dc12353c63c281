"""Billing failures, each with a stable code and the message a customer reads."""

from fiscobridge.core.errors import Conflict, DomainError, InvalidInput, NotFound


class BillingNotConfigured(DomainError):
    code = "billing_not_configured"
    message = "Online purchase is not configured on this server"
    http_status = 503


class PlanNotAvailable(InvalidInput):
    code = "plan_not_available"
    message = "That plan cannot be bought online on this server"


class InvalidSeats(InvalidInput):
    code = "invalid_seats"
    message = "Choose between 1 and 1000 seats"


class StripeUnavailable(DomainError):
    """Stripe did not answer, or answered with an error we did not expect. Nothing was changed."""

    code = "stripe_unavailable"
    message = "Stripe could not be reached. Nothing was changed; please try again in a moment."
    http_status = 503


class StripeDeclined(DomainError):
    """Stripe refused the request (for example the card was declined). Nothing was changed."""

    code = "stripe_declined"
    message = "Stripe declined the change. Nothing was changed."
    http_status = 402


class NoStripeCustomer(NotFound):
    code = "no_stripe_customer"
    message = "You have not bought anything online yet, so there is nothing to manage in Stripe."


class SubscriptionNotChangeable(Conflict):
    code = "subscription_not_changeable"
    message = "Only an active Stripe subscription can change its seats"


class SeatsInUse(Conflict):
    code = "seats_in_use"

    def __init__(self, *, in_use: int, minimum: int):
        super().__init__(
            f"{in_use} seat{'s are' if in_use != 1 else ' is'} in use, so this subscription cannot go below "
            f"{minimum} seat{'s' if minimum != 1 else ''}. Free seats first (revoke certificates or remove "
            "connections), then lower the seats.",
            details={"in_use": in_use, "minimum": minimum},
        )


class InvalidWebhook(DomainError):
    """The payload is unsigned, wrongly signed, too old, or not JSON: we do not read it."""

    code = "invalid_webhook"
    message = "Invalid webhook signature or payload"
    http_status = 400


class WebhookNotUnderstood(DomainError):
    """A signed event we cannot apply (unknown customer or price): stored as failed."""

    code = "webhook_not_understood"
    message = "The event refers to something this server does not know"
    http_status = 422


class ForeignCustomer(WebhookNotUnderstood):
    """An event about a Stripe customer this server never created (the Stripe account may serve
    other systems too). Stored as ignored, with this reason: a redelivery would not change it."""

    code = "foreign_customer"


class WebhookHandlingFailed(Exception):
    """The event is stored as failed; answer non-2xx so that Stripe delivers it again."""

    def __init__(self, event):
        self.event = event
        super().__init__(event.error)
