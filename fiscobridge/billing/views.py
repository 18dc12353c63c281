"""The Stripe webhook endpoint. Customer-facing billing pages live in fiscobridge.portal."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from fiscobridge.billing.errors import (
    BillingNotConfigured,
    InvalidWebhook,
    WebhookHandlingFailed,
)
from fiscobridge.billing.webhooks import handle_webhook

# Stripe's events are small; anything much larger is not one of them.
MAX_PAYLOAD_BYTES = 512 * 1024


@csrf_exempt  # Stripe cannot send our CSRF token: the signature is the authentication.
@require_POST
def webhook(request: HttpRequest) -> JsonResponse:
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_PAYLOAD_BYTES:
        return JsonResponse({"error": {"code": "payload_too_large", "message": "Payload too large"}}, status=413)
    try:
        event = handle_webhook(payload=request.body, signature=request.headers.get("Stripe-Signature"))
    except InvalidWebhook as error:
        return JsonResponse({"error": {"code": error.code, "message": error.message}}, status=400)
    except BillingNotConfigured as error:
        return JsonResponse({"error": {"code": error.code, "message": error.message}}, status=503)
    except WebhookHandlingFailed as failure:
        # Stored as failed with its error; Stripe delivers it again and the next try re-applies it.
        return JsonResponse(
            {
                "error": {"code": "handling_failed", "message": "Event stored, handling failed"},
                "event": failure.event.event_id,
            },
            status=500,
        )
    return JsonResponse({"received": True, "event": event.event_id, "status": event.status})
