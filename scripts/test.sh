#!/usr/bin/env bash
# Runs every test on SQLite, then on PostgreSQL. With CI=true a missing PostgreSQL fails the
# run instead of skipping it. Each pass gets a throwaway database and data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
which_pass="${1:-all}"
run_id="$(date +%s)_$$"
scratch="$(mktemp -d -t fiscobridge-test-XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
export FISCOBRIDGE_DATA_DIR="$scratch/data"
export FISCOBRIDGE_ENV=development
export PYTHONDONTWRITEBYTECODE=1
status=0
extra=()

# Browser tests drive Debian's Chromium (Playwright's own download cannot work here).
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]] && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests…"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || true
fi
if [[ ! -x "$chromium" ]]; then
  if [[ "${CI:-}" == "true" ]]; then
    echo "FAIL: CI=true and no Chromium at $chromium; the browser tests are required in CI." >&2
    exit 1
  fi
  echo "SKIPPING the browser tests: no Chromium at $chromium (apt-get install chromium). CI would fail here." >&2
  extra+=(-m "not browser")
fi

if [[ "$which_pass" == all || "$which_pass" == sqlite ]]; then
  echo "=== pass 1/2: SQLite ==="
  DATABASE_URL="sqlite:///$scratch/main.sqlite3" SQLITE_TEST_NAME="$scratch/test.sqlite3" \
    "$BIN/pytest" -q "${extra[@]}" ${PYTEST_ARGS:-} || status=$?
fi

if [[ "$which_pass" == all || "$which_pass" == postgres ]]; then
  echo "=== pass 2/2: PostgreSQL ==="
  pg_url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  if "$BIN/python" - "$pg_url" <<'PY'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1].replace("postgres://", "postgresql://", 1), connect_timeout=5).close()
except Exception as error:
    print(f"PostgreSQL is not reachable at {sys.argv[1]}: {error}", file=sys.stderr)
    sys.exit(1)
PY
  then
    db="fiscobridge_test_${run_id}"
    DATABASE_URL="$pg_url" POSTGRES_TEST_NAME="$db" FISCOBRIDGE_REQUIRE_POSTGRES=1 \
      "$BIN/pytest" -q "${extra[@]}" ${PYTEST_ARGS:-} || status=$?
  elif [[ "${CI:-}" == "true" ]]; then
    echo "FAIL: CI=true and PostgreSQL is missing; the PostgreSQL tests are required in CI." >&2
    status=1
  else
    echo "SKIPPED the PostgreSQL pass: no server (set TEST_DATABASE_URL). CI would fail here." >&2
  fi
fi
exit "$status"
