"""What a log line is about: the request or task run in hand, carried by a contextvar.

The request middleware (web/request_log.py) and the task worker (tasks/run_context.py) bind an
id for each request or task run; `LogContextFilter`, on every handler of the app's logging,
copies it onto each record, so that any line written meanwhile, by any module, says which
request it belongs to. For a request, who is calling (user, customer account, partner) and the URL
pattern are read from the request object when the line is written, and only when they are
already known: the filter never loads a user, a session or anything else from the database.
"""

import contextvars
import logging
import re
import uuid

from django.utils.functional import SimpleLazyObject, empty

# An incoming X-Request-Id is kept only when it looks like an id: it goes into every log line
# of the request and back into a response header, so no spaces, quotes or control characters.
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._-]{8,128}")

FIELDS = ("request_id", "user_id", "account_id", "partner_id", "route")

_current: contextvars.ContextVar[dict | None] = contextvars.ContextVar("fiscobridge_log_context", default=None)


def new_id() -> str:
    return uuid.uuid4().hex


def accepted_id(incoming: str | None) -> str:
    """The caller's id when it is well-formed (a proxy or a client tracing one call across
    systems), else a new one."""
    if incoming and WELL_FORMED_ID.fullmatch(incoming):
        return incoming
    return new_id()


def bind(*, request_id: str, request=None, **fields) -> None:
    """Start the context of one request (with its request object) or one task run; it lasts
    until `clear` or the next `bind` in this thread."""
    _current.set({"request_id": request_id, "request": request, **fields})


def clear() -> None:
    """End the context: the request's response was closed, or the task run finished (both
    told by Django's or django-tasks' signals, which come after the last line of either)."""
    _current.set(None)


def current_request_id() -> str | None:
    context = _current.get()
    return context["request_id"] if context else None


def known_user(request):
    """The request's user if authentication already found it (a bearer token, or a session the
    view read), else None: never evaluated here, because that could cost a query."""
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = user.__dict__.get("_wrapped", empty)
        if user is empty:
            return None
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user


def route_of(request) -> str | None:
    """The URL pattern that matched (`api/v1/pos/certificates/<str:uid>/revoke`), never the raw
    path, which holds ids; None before resolution or when nothing matched."""
    match = getattr(request, "resolver_match", None)
    return match.route if match is not None else None


def request_fields(request) -> dict:
    user = known_user(request)
    return {
        "user_id": user.pk if user is not None else None,
        "account_id": getattr(user, "account_id", None),
        "partner_id": getattr(user, "partner_id", None),
        "route": route_of(request),
    }


class LogContextFilter(logging.Filter):
    """Adds request_id, user_id, account_id, partner_id and route to every record (None when not
    known), without overriding what a record already carries (the access line's own values)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get() or {}
        values = dict(context)
        request = values.pop("request", None)
        if request is not None:
            values.update(request_fields(request))
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, values.get(name))
        for name, value in values.items():
            if name not in FIELDS and not hasattr(record, name):
                setattr(record, name, value)  # a task run's task_id and task name
        return True
