#!/usr/bin/env bash
# Runs every test on SQLite and on PostgreSQL (`scripts/test.sh [all|sqlite|postgres]`). With
# CI=true a missing PostgreSQL or Chromium fails the run instead of skipping it. Each pass gets a
# throwaway database and data directory; the run fails if either pass fails.
#
# Both passes run at the same time and the machine's CPUs are shared out between them: each pass
# runs in TEST_WORKERS processes (pytest-xdist), by default CPUs / passes. On two CPUs that is one
# process per pass, which measured faster than one pass after the other with two workers each
# (no worker start-up twice, one browser and one local Stripe per pass). A single pass gets every
# CPU. Under xdist, pytest-django gives each worker its own test database (SQLITE_TEST_NAME /
# POSTGRES_TEST_NAME + _gw0, _gw1, …); live_server, the local Stripe and Chromium are per worker
# on free ports. Not `--dist loadscope/loadgroup`: they run only one of the API fuzz tests, whose
# node ids are all alike. TEST_PASSES=sequential runs one pass after the other. Extra pytest
# arguments: PYTEST_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
which_pass="${1:-all}"
run_id="$(date +%s)_$$"
scratch="$(mktemp -d -t fiscobridge-test-XXXXXX)"
sqlite_pid=""
# A pass running in the background ignores Ctrl-C (bash does that to background jobs): end it here.
trap '[[ -z "$sqlite_pid" ]] || { pkill -TERM -P "$sqlite_pid"; kill "$sqlite_pid"; } 2>/dev/null; rm -rf "$scratch"' EXIT
export FISCOBRIDGE_ENV=development
export PYTHONDONTWRITEBYTECODE=1
extra=()

case "$which_pass" in
  all|sqlite|postgres) ;;
  *) echo "usage: $0 [all|sqlite|postgres]" >&2; exit 2 ;;
esac
at_once=false
if [[ "$which_pass" == all && "${TEST_PASSES:-parallel}" == parallel ]]; then
  at_once=true
fi
cpus="$(nproc 2>/dev/null || echo 2)"
if $at_once; then default_workers=$(( cpus / 2 )); else default_workers=$cpus; fi
workers="${TEST_WORKERS:-$(( default_workers > 1 ? default_workers : 1 ))}"
if (( workers > 1 )); then
  extra+=(-n "$workers" --dist worksteal)
fi

# Browser tests drive Debian's Chromium (Playwright's own download cannot work here); the deploy
# kit's tests (tests/test_deploy_files.py) check the nginx site file with Debian's nginx, the
# systemd units with systemd-analyze and make a throwaway certificate with openssl. Whatever is
# missing is installed in one apt-get run (the tests start their own nginx on free ports).
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
apt_packages=()
[[ -x "$chromium" ]] || apt_packages+=(chromium)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || apt_packages+=(nginx)
command -v systemd-analyze >/dev/null || apt_packages+=(systemd)
command -v openssl >/dev/null || apt_packages+=(openssl)
# npm installs axe-core (below) when node_modules/ is missing.
[[ -f node_modules/axe-core/axe.min.js ]] || command -v npm >/dev/null || apt_packages+=(npm)
if (( ${#apt_packages[@]} )) && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "Installing Debian's ${apt_packages[*]} for the browser and deploy tests…"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_packages[@]}" >/dev/null) || true
fi
if [[ ! -x "$chromium" ]]; then
  if [[ "${CI:-}" == "true" ]]; then
    echo "FAIL: CI=true and no Chromium at $chromium; the browser tests are required in CI." >&2
    exit 1
  fi
  echo "SKIPPING the browser tests: no Chromium at $chromium (apt-get install chromium). CI would fail here." >&2
  extra+=(-m "not browser")
fi

# axe-core (the accessibility checks of tests/test_accessibility_browser.py) comes from the npm
# registry at the version pinned in package-lock.json; `npm ci` installs exactly that into
# node_modules/ once. The tests read node_modules/axe-core/axe.min.js from disk: nothing is
# downloaded while they run. Without it the tests skip, except with CI=true, where they fail.
if [[ ! -f node_modules/axe-core/axe.min.js ]]; then
  if command -v npm >/dev/null; then
    echo "Installing axe-core for the accessibility tests (npm ci)…"
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error || {
      [[ "${CI:-}" == "true" ]] && { echo "FAIL: CI=true and npm ci failed; axe-core is required in CI." >&2; exit 1; }
      echo "npm ci failed: the accessibility tests will skip. CI would fail here." >&2
    }
  elif [[ "${CI:-}" == "true" ]]; then
    echo "FAIL: CI=true and no npm to install axe-core; the accessibility tests are required in CI." >&2
    exit 1
  else
    echo "No npm: the accessibility tests will skip (apt-get install npm). CI would fail here." >&2
  fi
fi

sqlite_pass() {
  echo "=== pass 1/2: SQLite ==="
  FISCOBRIDGE_DATA_DIR="$scratch/sqlite-data" DATABASE_URL="sqlite:///$scratch/main.sqlite3" \
    SQLITE_TEST_NAME="$scratch/test.sqlite3" \
    "$BIN/pytest" -q "${extra[@]}" ${PYTEST_ARGS:-}
}

postgres_pass() {
  echo "=== pass 2/2: PostgreSQL ==="
  local pg_url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  if "$BIN/python" - "$pg_url" <<'PY'
import sys, psycopg
try:
    psycopg.connect(sys.argv[1].replace("postgres://", "postgresql://", 1), connect_timeout=5).close()
except Exception as error:
    print(f"PostgreSQL is not reachable at {sys.argv[1]}: {error}", file=sys.stderr)
    sys.exit(1)
PY
  then
    FISCOBRIDGE_DATA_DIR="$scratch/postgres-data" DATABASE_URL="$pg_url" \
      POSTGRES_TEST_NAME="fiscobridge_test_${run_id}" FISCOBRIDGE_REQUIRE_POSTGRES=1 \
      "$BIN/pytest" -q "${extra[@]}" ${PYTEST_ARGS:-}
  elif [[ "${CI:-}" == "true" ]]; then
    echo "FAIL: CI=true and PostgreSQL is missing; the PostgreSQL tests are required in CI." >&2
    return 1
  else
    echo "SKIPPED the PostgreSQL pass: no server (set TEST_DATABASE_URL). CI would fail here." >&2
  fi
}

sqlite_status=0
postgres_status=0
if $at_once; then
  echo "Running the SQLite and PostgreSQL passes at once; each pass's output follows when both are done."
  sqlite_pass > "$scratch/sqlite.log" 2>&1 &
  sqlite_pid=$!
  postgres_pass > "$scratch/postgres.log" 2>&1 || postgres_status=$?
  wait "$sqlite_pid" || sqlite_status=$?
  sqlite_pid=""
  cat "$scratch/sqlite.log" "$scratch/postgres.log"
else
  if [[ "$which_pass" != postgres ]]; then sqlite_pass || sqlite_status=$?; fi
  if [[ "$which_pass" != sqlite ]]; then postgres_pass || postgres_status=$?; fi
fi
(( sqlite_status == 0 && postgres_status == 0 ))
