"""The API's one translator of failures into `{"error": {"code", "message", "details"}}`."""

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from fiscobridge.api.auth import requester_for
from fiscobridge.core.errors import DomainError
from fiscobridge.keys.errors import TooManyAttempts
from fiscobridge.keys.limits import ensure_not_locked
from fiscobridge.web.guards import database_unavailable, is_database_unavailable

logger = logging.getLogger("fiscobridge.api")


def error_response(
    api: NinjaAPI, request: HttpRequest, status: int, code: str, message: str, details=None
) -> HttpResponse:
    return api.create_response(
        request, {"error": {"code": code, "message": message, "details": details or {}}}, status=status
    )


def _validation_errors(errors: list[dict]) -> list[dict]:
    # Only where and what: the rejected input itself may be a key and is never echoed back.
    return [{"loc": list(e.get("loc", [])), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]


def install_error_handlers(api: NinjaAPI) -> None:
    @api.exception_handler(DomainError)
    def _domain(request, exc: DomainError):
        response = error_response(api, request, exc.http_status, exc.code, exc.message, exc.details)
        retry_after = getattr(exc, "retry_after", None)  # lockouts, throttles, a used-up month
        if retry_after is not None:
            response["Retry-After"] = str(retry_after)
        return response

    @api.exception_handler(ValidationError)
    def _invalid(request, exc: ValidationError):
        locked = _lockout_first(request)
        if locked is not None:
            return _domain(request, locked)
        return error_response(
            api,
            request,
            422,
            "invalid_request",
            "The request is not valid",
            {"errors": _validation_errors(exc.errors)},
        )

    @api.exception_handler(AuthenticationError)
    def _unauthenticated(request, exc):
        return error_response(api, request, 401, "unauthenticated", "Sign in or send a valid API token")

    @api.exception_handler(HttpError)
    def _http(request, exc: HttpError):
        if isinstance(exc.__cause__, DomainError):  # ninja wraps what its body parser raises
            return _domain(request, exc.__cause__)
        code = {
            400: "bad_request",
            401: "unauthenticated",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
        }.get(exc.status_code, "error")
        return error_response(api, request, exc.status_code, code, str(exc))

    @api.exception_handler(Http404)
    def _not_found(request, exc):
        return error_response(api, request, 404, "not_found", "Not found")

    @api.exception_handler(MultiPartParserError)
    def _bad_multipart(request, exc):
        return error_response(api, request, 400, "bad_request", "The multipart body is not valid")

    @api.exception_handler(RequestDataTooBig)
    def _too_big(request, exc):
        return error_response(api, request, 413, "payload_too_large", "The request body is too large")

    @api.exception_handler(Exception)
    def _unexpected(request, exc):
        if is_database_unavailable(exc):
            logger.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
            return database_unavailable(request)
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(api, request, 500, "internal_error", "Something went wrong on our side")


REDEEM_PATHS = ("/api/v1/keys/validate", "/api/v1/keys/activate")


def _lockout_first(request: HttpRequest) -> TooManyAttempts | None:
    """SPEC 2.5 row 1: a locked requester hears `too_many_attempts` before anything else, even
    before a malformed body is refused (the schema runs before the view)."""
    if request.path not in REDEEM_PATHS or getattr(getattr(request, "user", None), "account", None) is None:
        return None
    try:
        ensure_not_locked(requester_for(request))
    except TooManyAttempts as locked:
        return locked
    return None
