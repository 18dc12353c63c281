"""Each request: an id, one access line from the app, and its latency in the metrics.

First in MIDDLEWARE, so that it times everything the others do and sees the final answer (the
JSON error bodies included). It
- takes the caller's X-Request-Id when well-formed, else makes one, binds it for every log line
  written meanwhile (core/log_context.py) and sends it back in the response's X-Request-Id;
- writes one line on `fiscobridge.request` (INFO): method, URL pattern, status, duration, with
  the request's ids. gunicorn's own access line stays plain text; this one carries the fields
  when LOG_FORMAT=json;
- observes the duration by URL pattern, method and status class (core/metrics.py).
Nothing here touches the database: who is calling is read only when authentication already
found it (tests/test_hot_paths.py pins the hot paths' statements).
"""

import logging
import time

from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from fiscobridge.core import log_context, metrics

logger = logging.getLogger("fiscobridge.request")
HEADER = "X-Request-Id"


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = log_context.accepted_id(request.headers.get(HEADER))
        request.request_id = request_id
        # Unbound when the response is closed (below), not when this returns: Django logs a 4xx
        # or 5xx answer ("Not Found: …") after the whole middleware chain, and that line belongs
        # to the request too.
        log_context.bind(request_id=request_id, request=request)
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        response[HEADER] = request_id
        route = log_context.route_of(request)
        metrics.observe_request(route=route, method=request.method, status=response.status_code, seconds=seconds)
        duration_ms = round(seconds * 1000, 1)
        logger.info(
            "%s %s %s %sms",
            request.method,
            route or "(unmatched)",
            response.status_code,
            duration_ms,
            extra={"method": request.method, "status": response.status_code, "duration_ms": duration_ms},
        )
        return response


@receiver(request_finished, dispatch_uid="fiscobridge.web.request_log.unbind")
def _unbind(sender, **kwargs) -> None:
    """The server closed the response: the request is over, and so is its log context."""
    log_context.clear()
