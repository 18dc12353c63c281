"""Idempotency keys on the API's writes (SPEC 8).

A client that sends `Idempotency-Key: <1–255 printable ASCII>` with a write that creates or
spends something may send it again (a timeout, a dropped connection) without doing it twice:
- the first request's status and body are kept for 24 hours (IDEMPOTENCY_KEEP_HOURS); a retry
  with the same key and the same body gets them again, with `Idempotent-Replayed: true`;
- the same key with another body (or on another route) → 422 `idempotency_key_reused`;
- a retry while the first still runs → 409 `idempotency_key_in_use` (a first request that died
  without answering frees its key after IDEMPOTENCY_STALE_SECONDS);
- issued codes are never kept: a replayed issue answers 409 `batch_already_issued` with the
  batch id, and the codes stay where the first answer put them.
Keys are scoped to the API token (or to the user, for a browser session) and stored as a keyed
hash; bodies as a SHA-256 digest of their content (JSON compared as data, multipart as its fields
and files, so a new boundary or key order is the same body).

What is kept: answers below 500 except 401, 403 and 429 (who may ask, and how often, can change
before a retry). A 5xx answer frees the key: the client may try again.

Known limit: the answer is stored after the work commits, in its own statement. A process that
dies between the two leaves the key "in use" until it is stale; the retry then runs again and
gets the domain's own answer (for activate: `already_activated`), never a second effect.
"""

import hashlib
import json
import re
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse

from fiscobridge.api.models import IdempotentRequest
from fiscobridge.core import clock
from fiscobridge.core.crypto import keyed_hash
from fiscobridge.web.bearer import bearer_token

HEADER = "HTTP_IDEMPOTENCY_KEY"
KEY_PURPOSE = "idempotency-key"
ISSUE_ROUTE = re.compile(r"^/api/v1/partner/keys$")
ROUTES = [
    re.compile(r"^/api/v1/keys/activate$"),
    re.compile(r"^/api/v1/integrations/connections$"),
    re.compile(r"^/api/v1/integrations/connections/[^/]+/usage$"),
    re.compile(r"^/api/v1/pos/certificates$"),
    re.compile(r"^/api/v1/pos/certificates/[^/]+/revoke$"),
    ISSUE_ROUTE,
    re.compile(r"^/api/v1/partner/keys/[0-9]+/revoke$"),
    # Not webhook endpoint creation: its answer carries the signing secret, which is never stored
    # in the clear (a retry simply adds a second endpoint, which the partner can delete).
    re.compile(r"^/api/v1/partner/webhooks/deliveries/[0-9]+/resend$"),
]
NOT_KEPT = {401, 403, 429}
VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces at the ends


def _error(status: int, code: str, message: str, details: dict | None = None) -> HttpResponse:
    body = json.dumps({"error": {"code": code, "message": message, "details": details or {}}})
    return HttpResponse(body, status=status, content_type="application/json; charset=utf-8")


def _scope(request: HttpRequest) -> str | None:
    token = bearer_token(request)
    if token is not None:
        return f"token:{token.pk}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and not request.META.get("HTTP_AUTHORIZATION"):
        return f"user:{user.pk}"
    return None  # not signed in: the route answers 401 itself


def _body_digest(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    kind = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        for name in sorted(request.POST):
            digest.update(json.dumps([name, request.POST.getlist(name)]).encode())
        for name in sorted(request.FILES):
            for upload in request.FILES.getlist(name):
                digest.update(json.dumps(["file", name, upload.name]).encode())
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
        return digest.hexdigest()
    try:
        digest.update(json.dumps(json.loads(request.body or b"null"), sort_keys=True).encode())
    except ValueError:
        digest.update(request.body)
    return digest.hexdigest()


def _replay(row: IdempotentRequest) -> HttpResponse:
    response = HttpResponse(row.body, status=row.status, content_type="application/json; charset=utf-8")
    response["Idempotent-Replayed"] = "true"
    return response


def _claim(scope: str, key_hash: str, route: str, body_hash: str) -> IdempotentRequest | HttpResponse:
    """The new in-progress row for this request, or the answer when the key is taken."""
    moment = clock.now()
    for _ in range(2):
        try:
            with transaction.atomic():
                return IdempotentRequest.objects.create(
                    scope=scope, key_hash=key_hash, route=route, body_hash=body_hash, created_at=moment
                )
        except IntegrityError:
            row = IdempotentRequest.objects.filter(scope=scope, key_hash=key_hash).first()
        if row is None:
            continue  # deleted meanwhile: claim it again
        expired = row.created_at < moment - timedelta(hours=settings.IDEMPOTENCY_KEEP_HOURS)
        stale = row.status is None and row.created_at < moment - timedelta(seconds=settings.IDEMPOTENCY_STALE_SECONDS)
        if expired or stale:
            IdempotentRequest.objects.filter(pk=row.pk, created_at=row.created_at).delete()
            continue
        if row.route != route or row.body_hash != body_hash:
            return _error(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used with another request",
                {"route": row.route},
            )
        if row.status is None:
            return _error(409, "idempotency_key_in_use", "A request with this Idempotency-Key is still running")
        return _replay(row)
    return _error(409, "idempotency_key_in_use", "A request with this Idempotency-Key is still running")


def _kept_answer(request: HttpRequest, response: HttpResponse) -> tuple[int, str]:
    """What a replay answers: the first answer, except an issue's codes (never kept)."""
    if ISSUE_ROUTE.match(request.path) and response.status_code == 201:
        batch = json.loads(response.content)["batch"]["id"]
        message = "These keys were issued by the first request with this Idempotency-Key; codes are shown only once"
        body = {"error": {"code": "batch_already_issued", "message": message, "details": {"batch": batch}}}
        return 409, json.dumps(body)
    return response.status_code, response.content.decode()


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.META.get(HEADER)
        if key is None or request.method != "POST" or not any(route.match(request.path) for route in ROUTES):
            return self.get_response(request)
        if not VALID_KEY.match(key):
            return _error(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable ASCII characters")
        scope = _scope(request)
        if scope is None:
            return self.get_response(request)
        claimed = _claim(scope, keyed_hash(KEY_PURPOSE, key), f"POST {request.path}", _body_digest(request))
        if isinstance(claimed, HttpResponse):
            return claimed
        try:
            response = self.get_response(request)
        except BaseException:
            IdempotentRequest.objects.filter(pk=claimed.pk).delete()
            raise
        if response.status_code >= 500 or response.status_code in NOT_KEPT:
            IdempotentRequest.objects.filter(pk=claimed.pk).delete()
        else:
            status, body = _kept_answer(request, response)
            IdempotentRequest.objects.filter(pk=claimed.pk).update(status=status, body=body)
        return response
