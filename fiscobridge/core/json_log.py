"""LOG_FORMAT=json: one JSON object per line (python-json-logger), redacted value by value.

Every line has the same keys: time (ISO-8601, UTC), level, logger, message, request_id, user_id,
account_id, partner_id, route (the URL pattern) — None where not known — and whatever else the
record carries (the access line's method, status and duration_ms; a task run's task_id; a
traceback as exc_info).

The redaction filter (core/redact.py) stays on the handler, but it can only rewrite the message
and the traceback text; here every string value is redacted once more, after python-json-logger
has formatted the traceback itself (it formats `exc_info` afresh, not the filter's redacted
text) and after Django's extras (`request`, whose repr holds the path and query string) have
been turned into strings.
"""

import re

from pythonjsonlogger.json import JsonFormatter

from fiscobridge.core.log_context import FIELDS
from fiscobridge.core.redact import REDACTED, redact

_PLAIN = (str, int, float, bool, type(None))
# Django's request loggers attach the request object: its repr is the raw path with the query
# string, which the route and the access line already say without ids or queries.
_DROPPED = {"request", "server_time"}


# An extra or a nested value under such a name is dropped whole, whatever it looks like.
_SECRET_NAME = re.compile(r"(?i)passw|secret|token|authorization|cookie|api_?key")


def _clean(value):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        return {str(k): REDACTED if _SECRET_NAME.search(str(k)) else _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return redact(str(value))


class JsonLineFormatter(JsonFormatter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("fmt", ["levelname", "name", "message", *FIELDS])
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        super().__init__(*args, **kwargs)

    def process_log_record(self, log_data: dict) -> dict:
        time = log_data.pop("time")
        cleaned = {"time": time.isoformat(timespec="milliseconds")}
        for key, value in log_data.items():
            if key not in _DROPPED:
                cleaned[key] = REDACTED if _SECRET_NAME.search(key) else _clean(value)
        return cleaned
