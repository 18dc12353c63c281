"""What every request must pass before any view reads it, and the answer when the database is away.

`RequestGuardMiddleware` refuses, from the headers alone and before a byte of the body is read:
- a URL longer than REQUEST_MAX_URL_BYTES → 414;
- a body larger than REQUEST_MAX_BODY_BYTES → 413; larger than REQUEST_MAX_ANONYMOUS_BODY_BYTES
  from a requester who is neither signed in nor holds a valid API token → 413. A 200 MiB
  multipart body to /login/ is never spooled to disk.
Django reads a body only up to CONTENT_LENGTH, so a body without one (chunked) reads as empty.

`database_unavailable` is the answer when PostgreSQL cannot be reached: 503
`service_unavailable` with Retry-After, the JSON error body under /api/v1 and a plain "try again
shortly" page elsewhere (SPEC 8). The API's handler and the pages' handler500 both use it.
"""

import json

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from fiscobridge.web.bearer import bearer_token

API_PREFIX = "/api/v1/"
RETRY_AFTER_SECONDS = 5
DATABASE_ERRORS = (OperationalError, InterfaceError)


def is_database_unavailable(error: BaseException | None) -> bool:
    """A failure to reach the database (connection refused, dropped, server shutting down)."""
    return isinstance(error, DATABASE_ERRORS)


def plain_answer(request: HttpRequest, status: int, code: str, message: str, title: str) -> HttpResponse:
    """The error body under /api/v1, a plain page elsewhere; no database needed for either."""
    if request.path.startswith(API_PREFIX):
        body = json.dumps({"error": {"code": code, "message": message, "details": {}}})
        response = HttpResponse(body, status=status, content_type="application/json; charset=utf-8")
    else:
        page = render_to_string("plain_error.html", {"title": title, "message": message})
        response = HttpResponse(page, status=status)
    if status == 503:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def database_unavailable(request: HttpRequest) -> HttpResponse:
    return plain_answer(
        request,
        503,
        "service_unavailable",
        "The service is unavailable for a moment. Try again shortly",
        "Try again shortly",
    )


class RequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self.refusal(request)
        if refusal is not None:
            return refusal
        return self.get_response(request)

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        url_bytes = len(request.META.get("PATH_INFO", "")) + len(request.META.get("QUERY_STRING", ""))
        if url_bytes > settings.REQUEST_MAX_URL_BYTES:
            return plain_answer(request, 414, "uri_too_long", "The address is too long", "Address too long")
        length = _content_length(request)
        if length is None:
            return plain_answer(request, 400, "bad_request", "The Content-Length header is not valid", "Bad request")
        if length > settings.REQUEST_MAX_BODY_BYTES or (
            length > settings.REQUEST_MAX_ANONYMOUS_BODY_BYTES and not _identified(request)
        ):
            return plain_answer(request, 413, "payload_too_large", "The request body is too large", "Too large")
        return None


def _content_length(request: HttpRequest) -> int | None:
    raw = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(raw)
    except ValueError:
        return None
    return length if length >= 0 else None


def _identified(request: HttpRequest) -> bool:
    """Signed in (session) or holding a valid API token: only they may send large bodies."""
    if request.META.get("HTTP_AUTHORIZATION", "").lower().startswith("bearer "):
        return bearer_token(request) is not None
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)
