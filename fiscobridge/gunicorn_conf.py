"""gunicorn's configuration (`fiscobridge serve` passes `--config python:fiscobridge.gunicorn_conf`).

What gunicorn answers by itself, before or instead of the app, must keep the app's promises:
- errors in the JSON error body (SPEC 5.2), not gunicorn's HTML pages: a malformed request,
  and a request whose worker ran out of time (503 `service_unavailable` with Retry-After);
- over-long URLs reach the app (`limit_request_line = 0`, gunicorn still stops at 1 MiB), which
  answers 414 itself (web/guards.py), so that API clients get the error body;
- no query string and no referrer in the access log: a query may hold a search for a full
  activation key (the app refuses those too); every line of gunicorn's logs passes the app's
  redaction filter (core/redact.py) as well;
- a worker timeout above the slowest legitimate request: certificate parsing is bounded at
  2 × CERTIFICATE_PARSE_SECONDS, issuing 10,000 keys takes a few seconds.
Also, for docs/observability.md:
- LOG_FORMAT=json makes gunicorn's own lines (errors, access) JSON objects too, so that every
  line of the server's output parses;
- metrics are summed over the workers (prometheus-client's multiprocess mode): each worker
  writes its counters to files in PROMETHEUS_MULTIPROC_DIR (a private temporary directory when
  not set), emptied when the server starts, so that a restart starts from zero as a single
  process would, and told when a worker exits.
Environment (README's configuration table, deploy/README.md): GUNICORN_TIMEOUT (seconds, default
60), GUNICORN_GRACEFUL_TIMEOUT (30), GUNICORN_MAX_REQUESTS (1000) and GUNICORN_MAX_REQUESTS_JITTER
(100), GUNICORN_KEEPALIVE (5), WEB_THREADS (> 1: threaded workers), FORWARDED_ALLOW_IPS (default
127.0.0.1), LOG_LEVEL (the app's, also gunicorn's), LOG_FORMAT, PROMETHEUS_MULTIPROC_DIR.
"""

import gc
import json
import os
import shutil
import tempfile
from pathlib import Path

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from fiscobridge.core.redact import RedactSecrets

# Set before any worker imports prometheus-client, which picks its file-backed values from the
# environment at import: the workers are forked from this process and inherit it.
_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="fiscobridge-metrics-")
METRICS_DIR = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def _seconds_or_count(name: str, default: int) -> int:
    """A whole number >= 0 from the environment; anything else stops gunicorn with one clear line."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise SystemExit(f"error: {name} must be a whole number of at least 0, not {text!r}")
    return value


timeout = _seconds_or_count("GUNICORN_TIMEOUT", 60) or 60
# On SIGTERM (a deploy, `systemctl stop`) workers finish the requests in hand for this long;
# keep it below the stop timeout of the service manager (systemd TimeoutStopSec, compose
# stop_grace_period) so the manager never kills a worker mid-request.
graceful_timeout = _seconds_or_count("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Each worker is replaced after about this many requests (0: never), so slow growth of a
# process's memory (fragmentation, caches) is bounded; the jitter staggers the restarts so the
# workers of one server are not all replaced at the same moment.
max_requests = _seconds_or_count("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _seconds_or_count("GUNICORN_MAX_REQUESTS_JITTER", 100)
# The master imports the app once and the workers are forked from it: a replaced worker then
# costs a fork, not a fresh import of Django and the app (about 1.8 s of CPU here, which under
# load took a third of the machine: bench/README.md). A reload (HUP) therefore starts workers
# with the code already loaded; a new release restarts the service (deploy/README.md).
preload_app = True
# Seconds an idle keep-alive connection stays open. Only threaded workers (WEB_THREADS > 1) keep
# connections alive; sync workers close after each response, which suits a proxy in front.
keepalive = _seconds_or_count("GUNICORN_KEEPALIVE", 5)
limit_request_line = 0
accesslog = "-"
loglevel = (os.environ.get("LOG_LEVEL") or "info").lower()
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
threads = int(os.environ.get("WEB_THREADS", "1") or 1)
worker_class = f"fiscobridge.gunicorn_conf.{'JsonThreadWorker' if threads > 1 else 'JsonSyncWorker'}"

RETRY_AFTER_SECONDS = 5
CODES = {400: "bad_request", 403: "forbidden", 414: "uri_too_long", 417: "expectation_failed"}
CODES.update({431: "headers_too_large", 500: "server_error", 501: "not_implemented", 503: "service_unavailable"})
MESSAGES = {
    500: "Something went wrong on our side",
    503: "The server took too long to answer. Try again shortly",
}


def error_response(status: int, reason: str, message: str = "") -> bytes:
    """A complete HTTP response with SPEC 5.2's error body; the connection is closed after it."""
    code = CODES.get(status, "bad_request")
    text = MESSAGES.get(status) or message or reason
    body = json.dumps({"error": {"code": code, "message": text, "details": {}}}).encode()
    head = [f"HTTP/1.1 {status} {reason}", "Connection: close", "Content-Type: application/json"]
    head.append(f"Content-Length: {len(body)}")
    if status == 503:
        head.append(f"Retry-After: {RETRY_AFTER_SECONDS}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


if os.environ.get("LOG_FORMAT") == "json":
    # gunicorn's own lines as JSON objects too, from its very first one (the configuration it
    # prints at DEBUG comes before any server hook runs); redacted like the app's.
    _handler = {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact"]}
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "fiscobridge.core.json_log.JsonLineFormatter"}},
        "filters": {"redact": {"()": "fiscobridge.core.redact.RedactSecrets"}},
        "handlers": {
            "errors": {**_handler, "stream": "ext://sys.stderr"},
            "access": {**_handler, "stream": "ext://sys.stdout"},
        },
        "root": {"level": "INFO", "handlers": ["errors"]},
        "loggers": {
            # Not propagated: the workers' root logger is the app's, which would print them twice.
            "gunicorn.error": {"level": loglevel.upper(), "handlers": ["errors"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
    }


def post_fork(server, worker):
    """gunicorn's own loggers (access, errors) get the filter the app's logging has."""
    for log in (server.log.error_log, server.log.access_log):
        log.addFilter(RedactSecrets())


def pre_fork(server, worker):
    """Before each worker is forked from the master (which has the app loaded: preload_app).

    - The objects the app made at import are moved out of the garbage collector's reach: a
      worker's full collections then skip them (otherwise each took about 0.1 s, and touching
      them copied the master's memory pages into every worker).
    - The master never serves, but a database connection it opened (none today) must not be
      shared with a worker: both would talk over one socket."""
    from django.db import connections

    connections.close_all()
    gc.freeze()


def on_starting(server):
    post_fork(server, None)
    # Files left by an earlier run would add its counts to this one's.
    METRICS_DIR.mkdir(parents=True, exist_ok=True)
    for leftover in METRICS_DIR.glob("*.db"):
        leftover.unlink()


def child_exit(server, worker):
    """A worker is gone (exited, killed or recycled): its counters stay in the sums, its
    live gauges (none today) are dropped."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, str(METRICS_DIR))


def on_exit(server):
    if _OWN_METRICS_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)


def _write_json_error(sock, status_int, reason, mesg):
    util.write_nonblock(sock, error_response(int(status_int), reason, mesg))


# gunicorn's workers write their error pages with util.write_error: this process is ours, so
# every such page becomes the JSON error body (the workers are forked after this import).
util.write_error = _write_json_error


class _JsonErrors:
    """On a worker timeout (SIGABRT from the arbiter) the request in hand gets a 503 before the
    worker exits, instead of a closed connection."""

    current_client = None

    def handle_abort(self, sig, frame):
        client = self.current_client
        if client is not None:
            try:
                client.setblocking(True)
                client.sendall(error_response(503, "Service Unavailable"))
            except OSError:
                pass  # the client is gone
        super().handle_abort(sig, frame)


class JsonSyncWorker(_JsonErrors, SyncWorker):
    def handle(self, listener, client, addr):
        self.current_client = client
        try:
            super().handle(listener, client, addr)
        finally:
            self.current_client = None


class JsonThreadWorker(_JsonErrors, ThreadWorker):
    """Threaded: several requests at once, so a timeout cannot tell whose it is; only the JSON
    error pages apply (the arbiter's timeout concerns the worker's heartbeat, not one request)."""
