"""Keep SPEC 5.2's promise that every error under /api/v1 has the JSON error body, even for
what Django answers before our API code runs: an unmatched path (404), a wrong method (405), a host
that is not ours (400)."""

import json

from django.http import HttpRequest, HttpResponse

API_PREFIX = "/api/v1/"
FALLBACKS = {
    400: ("bad_request", "The request is not valid"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "This method is not allowed here"),
    413: ("payload_too_large", "The request body is too large"),
}


class ApiErrorBodyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code in FALLBACKS
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            code, message = FALLBACKS[response.status_code]
            body = json.dumps({"error": {"code": code, "message": message, "details": {}}})
            replacement = HttpResponse(
                body, status=response.status_code, content_type="application/json; charset=utf-8"
            )
            if response.has_header("Allow"):
                replacement["Allow"] = response["Allow"]
            return replacement
        return response
