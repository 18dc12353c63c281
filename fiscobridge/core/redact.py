"""Secrets out of log lines: the second line of defence behind "never log a secret".

The first line is not to put secrets where logs look (keys are not in URLs, the access log has
no query string, passwords are never audited). This filter, on every handler of the app's
logging and on gunicorn's loggers, rewrites whatever still looks like a secret:
- an activation key, whole (`POS-XXXX-XXXX-XXXX`, dashes or not, any case);
- an API token (`fbt_<prefix>_<secret>`), and any `Bearer …` credential;
- a password-reset link's uid and token (`/reset/<uidb64>/<token>/`);
- a value named like a password or token in a query string, a form body or JSON.
Tracebacks are formatted here and redacted too (a database error may quote a parameter).
"""

import logging
import re

REDACTED = "[redacted]"

_PATTERNS = [
    # Activation keys: a product prefix and three groups of four (SPEC 2.1), separators optional.
    (re.compile(r"\b(?:POS|INT)[-\s]?(?:[0-9A-Z]{4}[-\s]?){2}[0-9A-Z]{4}\b", re.IGNORECASE), REDACTED),
    (re.compile(r"\bfbt_[0-9a-f]+_[A-Za-z0-9_\-]+"), "fbt_" + REDACTED),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-]+"), r"\1 " + REDACTED),
    (re.compile(r"/reset/[^/\s]+/[^/\s]+/"), "/reset/" + REDACTED + "/"),
    (
        re.compile(r"(?i)([\"']?(?:password\d?|new_password\d|passwd|secret|token)[\"']?\s*[=:]\s*[\"']?)[^\"'&\s,}]+"),
        r"\1" + REDACTED,
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites the record's message (arguments merged in) and its traceback, then lets it pass."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to report
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
