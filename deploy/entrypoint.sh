#!/bin/sh
# The container's entrypoint (deploy/Dockerfile): one image, several roles.
#   web          gunicorn on 0.0.0.0:$PORT, without migrating (the release service did that)
#   worker       the task worker (e-mail, reminders, Stripe re-sync, periodic jobs)
#   release      the release step: migrations and static files, once per release, then exit
#   healthcheck  exit 0 when this container's web server answers /healthz
#   anything else is run as given (`fiscobridge manage shell`, `sh`, …)
# Extra arguments after web, worker and release go to that fiscobridge command.
# POSIX sh, so it runs the same under Debian's dash (the image) and bash; `exec` makes the
# server the container's main process, so `docker stop` (SIGTERM) reaches gunicorn or the worker.
set -eu

if [ "$#" -eq 0 ]; then
    echo "usage: entrypoint.sh web|worker|release|healthcheck|COMMAND [ARGS…]" >&2
    exit 64
fi

role="$1"
shift
case "$role" in
    web)
        exec fiscobridge serve --no-migrate --host 0.0.0.0 --port "${PORT:-8000}" "$@"
        ;;
    worker)
        exec fiscobridge worker "$@"
        ;;
    release)
        exec fiscobridge migrate "$@"
        ;;
    healthcheck)
        # Asks as the proxy does: the public host name (ALLOWED_HOSTS refuses any other) and
        # X-Forwarded-Proto https (production redirects plain HTTP; gunicorn trusts the header
        # from FORWARDED_ALLOW_IPS, which must then include 127.0.0.1 or be *).
        exec python3 - <<'PY'
import os
import sys
import urllib.request

host = (os.environ.get("ALLOWED_HOSTS") or "localhost").split(",")[0].strip().lstrip(".")
if host in ("", "*"):
    host = "localhost"
request = urllib.request.Request(
    f"http://127.0.0.1:{os.environ.get('PORT') or 8000}/healthz",
    headers={"Host": host, "X-Forwarded-Proto": "https"},
)
try:
    with urllib.request.urlopen(request, timeout=5) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as error:  # any failure is "unhealthy"; say which for `docker inspect`
    print(f"healthcheck: {error}", file=sys.stderr)
    sys.exit(1)
PY
        ;;
    *)
        if ! command -v "$role" >/dev/null 2>&1; then
            echo "entrypoint.sh: unknown role or command '$role' (expected web, worker, release, healthcheck or a program)" >&2
            exit 127
        fi
        exec "$role" "$@"
        ;;
esac
