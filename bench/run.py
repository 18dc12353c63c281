"""FiscoBridge Licensing benchmark: `make bench` or `.venv/bin/python -m bench.run [--help]`.

Measures, on PostgreSQL when it is reachable (else SQLite, said loudly):
- POST /api/v1/keys/activate, POST /api/v1/keys/validate and GET /healthz (the framework
  floor: no database, no session) over HTTP against `fiscobridge serve` (gunicorn, sync
  workers) at 1, 8 and 32 concurrent clients: requests/s, p50/p99 latency, errors, and the
  ratio of each API endpoint's throughput to the floor's;
- `fiscobridge issue-keys --count 100000`: keys/s and the peak RSS of the process;
- the Partner Portal's keys list page with 1,000,000 keys for one partner (PostgreSQL only):
  the first page, a deep page, filtered searches and the dashboard, p50/p99 ms
  (bench/partner_list.py).

`--only http,issuance,partner-list` (or `--skip …`) picks the parts; all three by default.

Everything runs in a throwaway database and data directory, dropped at the end. There are no
timing thresholds: the exit status is non-zero only when something failed (an unexpected HTTP
status, a connection error, a database count that disagrees with the answers, a bad CSV).
Results go to bench/results.json and are printed as a table.
"""

import argparse
import contextlib
import csv
import datetime as dt
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from contextlib import closing
from pathlib import Path

from bench.load import Request, json_check, run_level, tree_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
PARTS = ("http", "issuance", "partner-list")
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"
CODE_RE = re.compile(r"^POS-[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}$")  # SPEC 2.1: digits 2-9 and A-Z


def log(message: str) -> None:
    sys.stdout.flush()
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- database


class Database:
    """A throwaway PostgreSQL database (created and dropped here), or a temp SQLite file."""

    def __init__(self, vendor: str, url: str, admin_url: str | None = None, name: str | None = None, note: str = ""):
        self.vendor, self.url, self.admin_url, self.name, self.note = vendor, url, admin_url, name, note

    @classmethod
    def create(cls, scratch: Path, force_sqlite: bool) -> "Database":
        sqlite_url = f"sqlite:///{scratch / 'bench.sqlite3'}"
        if force_sqlite:
            return cls("sqlite", sqlite_url, note="--sqlite given")
        admin_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG
        try:
            import psycopg

            with closing(psycopg.connect(_libpq(admin_url), autocommit=True, connect_timeout=5)) as conn:
                name = f"fiscobridge_bench_{os.getpid()}"
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                conn.execute(f'CREATE DATABASE "{name}"')
        except Exception as error:
            reason = " ".join(str(error).split())
            note = f"PostgreSQL not reachable at {_redact(admin_url)} ({type(error).__name__}: {reason}); using SQLite"
            return cls("sqlite", sqlite_url, note=note)
        parts = urllib.parse.urlsplit(admin_url)
        url = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
        return cls("postgresql", url, admin_url=admin_url, name=name)

    def server_pid(self) -> int | None:
        """The PostgreSQL server's main process (postmaster), the parent of every backend, when it
        runs on this machine; None otherwise (then its CPU is not shown)."""
        if self.vendor != "postgresql":
            return None
        import psycopg

        with closing(psycopg.connect(_libpq(self.url), autocommit=True, connect_timeout=5)) as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        try:
            return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])  # ppid
        except (OSError, IndexError, ValueError):
            return None

    def cpu_probes(self) -> dict:
        """The PostgreSQL server's CPU (all its processes: the bench's backends, the WAL writer,
        the checkpointer), for run_level."""
        pid = self.server_pid()
        return {"postgres_server": lambda: tree_cpu_seconds(pid)} if pid else {}

    def drop(self) -> None:
        if self.vendor != "postgresql":
            return
        import psycopg

        with closing(psycopg.connect(_libpq(self.admin_url), autocommit=True, connect_timeout=5)) as conn:
            try:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            except psycopg.errors.SyntaxError:  # PostgreSQL < 13
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}"')


def _libpq(url: str) -> str:
    return re.sub(r"^(postgres|postgresql|pgsql)://", "postgresql://", url)


def _redact(url: str) -> str:
    return re.sub(r"//([^:@/]+):[^@/]*@", r"//\1:***@", url)


# --------------------------------------------------------------------------- subprocesses


def cli_argv() -> list[str]:
    script = Path(sys.executable).parent / "fiscobridge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "fiscobridge.cli"]


def bench_env(scratch: Path, database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"WEB_CONCURRENCY", "DJANGO_SETTINGS_MODULE"}}
    env.update(
        FISCOBRIDGE_DATA_DIR=str(scratch / "data"),
        FISCOBRIDGE_ENV="development",
        DATABASE_URL=database_url,
        DEBUG="false",
        LOG_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        # The benchmark sends valid keys only, so no lock should ever trigger; generous limits
        # anyway, so that a bug shows up as errors in the table rather than as a lockout storm.
        REDEEM_SESSION_FAILURE_LIMIT="1000000",
        REDEEM_ACCOUNT_FAILURE_LIMIT="1000000",
        REDEEM_IP_FAILURE_LIMIT="1000000",
        # The usage rows report one invoice per request on trial connections: a quota they cannot reach.
        TRIAL_INVOICES_PER_MONTH="1000000000",
    )
    return env


def run_checked(argv: list[str], env: dict, what: str) -> str:
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"{what} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


class BenchError(Exception):
    pass


def issue_to_csv(env: dict, partner_email: str, count: int, out: Path) -> tuple[list[str], dict]:
    """Run `fiscobridge issue-keys` as a child; returns the codes and the child's wall time and peak RSS."""
    argv = [
        *cli_argv(),
        "issue-keys",
        "--partner-email",
        partner_email,
        "--product",
        "pos",
        "--seats",
        "1",
        "--months",
        "12",
        "--count",
        str(count),
        "--out",
        str(out),
        "--quiet",
    ]
    with open(out.with_suffix(".log"), "w+") as errlog:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errlog)
        _, status, usage = os.wait4(proc.pid, 0)  # rusage of this child alone
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        errlog.seek(0)
        stderr = errlog.read()
    if proc.returncode != 0:
        raise BenchError(f"issue-keys --count {count} failed (exit {proc.returncode}):\n{stderr[-3000:]}")
    with open(out, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or rows[0][:2] != ["code", "id"]:
        raise BenchError(f"issue-keys wrote an unexpected CSV header: {rows[:1]}")
    codes = [row[0] for row in rows[1:]]
    bad = sum(1 for code in codes if not CODE_RE.match(code))
    if len(codes) != count or bad or len(set(codes)) != count:
        raise BenchError(
            f"issue-keys CSV: {len(codes)} rows (expected {count}), {bad} malformed, "
            f"{len(codes) - len(set(codes))} duplicates"
        )
    return codes, {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024}  # ru_maxrss is KiB on Linux


# --------------------------------------------------------------------------- server


class Server:
    def __init__(self, env: dict, workers: int, log_path: Path, threads: int = 1):
        self.host, self.port, self.workers = "127.0.0.1", _free_port(), workers
        self.log = open(log_path, "w+")  # noqa: SIM115 (open for the server's life; closed in stop())
        argv = [*cli_argv(), "serve", "--host", self.host, "--port", str(self.port), "--workers", str(workers)]
        argv += ["--threads", str(threads)]
        self.proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 90) -> None:
        import http.client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
                conn.request("GET", "/healthz")
                resp = conn.getresponse()
                body = resp.read()
                conn.close()
                # Every worker must be up before measuring: wait for all of them to exist.
                if resp.status == 200 and json.loads(body) == {"ok": True} and len(self.worker_pids()) >= self.workers:
                    return
            except (OSError, ValueError):
                pass  # not listening yet
            time.sleep(0.25)
        raise BenchError(f"the server did not answer /healthz within {timeout:.0f}s:\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def cpu_probes(self) -> dict:
        """gunicorn's CPU (master and workers, the replaced ones included), for run_level."""
        return {"gunicorn_server": lambda: tree_cpu_seconds(self.proc.pid)}

    def log_tail(self, chars: int = 3000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-chars:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # our own session: gunicorn and its workers
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.log.close()


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- request sources


class KeyPool:
    """Fresh activation keys, each handed out once across all client threads."""

    def __init__(self, codes: list[str]):
        self.codes, self.next, self.lock = codes, 0, threading.Lock()

    def take(self) -> str | None:
        with self.lock:
            if self.next >= len(self.codes):
                return None
            self.next += 1
            return self.codes[self.next - 1]

    @property
    def left(self) -> int:
        return len(self.codes) - self.next


def _headers(token: str | None = None) -> dict:
    headers = {"Accept": "application/json"}
    if token:
        headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    return headers


def healthz_source():
    request = Request("GET", "/healthz", None, _headers(), 200, True)
    return lambda index: request


def validate_source(tokens: list[str], codes: list[str]):
    # Validate changes nothing: each client cycles through its own slice of the pool.
    state = {}

    def source(index: int) -> Request:
        n = state.get(index, index * 7)
        state[index] = n + 1
        body = json.dumps({"key": codes[n % len(codes)], "product": "pos"}).encode()
        return Request("POST", "/api/v1/keys/validate", body, _headers(tokens[index % len(tokens)]), 200, True)

    return source


def activate_source(tokens: list[str], pool: KeyPool):
    def source(index: int) -> Request | None:
        code = pool.take()
        if code is None:
            return None
        body = json.dumps({"key": code, "product": "pos"}).encode()
        return Request("POST", "/api/v1/keys/activate", body, _headers(tokens[index % len(tokens)]), 201, False)

    return source


def entitlement_source(tokens: list[str], uids: list[str]):
    # Client i asks for the certificate of the account its token belongs to (token i → account i % n).
    def source(index: int) -> Request:
        uid = uids[index % len(uids)]
        path = f"/api/v1/pos/certificates/{uid}/entitlement"
        return Request("GET", path, None, _headers(tokens[index % len(tokens)]), 200, True)

    return source


def lease_source(tokens: list[str], uids: list[str]):
    # The same certificates as entitlement: each request signs a lease and writes its audit event.
    def source(index: int) -> Request:
        path = f"/api/v1/pos/certificates/{uids[index % len(uids)]}/lease"
        return Request("POST", path, b"{}", _headers(tokens[index % len(tokens)]), 200, True)

    return source


def usage_source(tokens: list[str], uids: list[str]):
    body = json.dumps({"invoices": 1}).encode()

    def source(index: int) -> Request:
        path = f"/api/v1/integrations/connections/{uids[index % len(uids)]}/usage"
        return Request("POST", path, body, _headers(tokens[index % len(tokens)]), 200, False)

    return source


CHECKS = {
    "healthz": json_check(lambda b: b == {"ok": True}, 'expected {"ok": true}'),
    "validate": json_check(
        lambda b: b.get("product") == "pos" and b.get("seats") == 1 and "expires_at" in b, "expected a pos preview"
    ),
    "activate": json_check(lambda b: isinstance(b.get("subscription"), dict), "expected {subscription: ...}"),
    "entitlement": json_check(lambda b: b == {"can_sign": True, "reason": "ok"}, "expected can_sign"),
    "lease": json_check(lambda b: b.get("lease", "").count(".") == 2 and "expires_at" in b, "expected a lease"),
    "usage": json_check(lambda b: b.get("status") == "active" and b.get("invoices_this_month", 0) >= 1, "a count"),
}
CHECKS["activate_stalled_smtp"] = CHECKS["activate"]


# --------------------------------------------------------------------------- main


def machine_info() -> dict:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_total = None
    with contextlib.suppress(OSError, AttributeError):
        mem_total = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1)) // 1024
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_mib": mem_total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def parse_args(argv):
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration",
        type=float,
        default=float(os.environ.get("BENCH_DURATION", 6)),
        help="seconds measured per endpoint and concurrency (default 6, env BENCH_DURATION)",
    )
    parser.add_argument("--warmup", type=float, default=1.5, help="warm-up seconds per endpoint (default 1.5)")
    parser.add_argument("--clients", default="1,8,32", help="concurrency levels (default 1,8,32)")
    parser.add_argument(
        "--workers", type=int, default=2 * cores + 1, help=f"gunicorn workers (default {2 * cores + 1})"
    )
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (default 1: sync workers)")
    parser.add_argument("--accounts", type=int, default=8, help="customer accounts (default 8)")
    parser.add_argument("--tokens-per-account", type=int, default=4, help="API tokens per account (default 4)")
    parser.add_argument("--issue-count", type=int, default=100_000, help="keys in the issuance run (default 100000)")
    parser.add_argument(
        "--partner-keys",
        type=int,
        default=1_000_000,
        help="keys loaded for the partner-list benchmark (default 1000000)",
    )
    parser.add_argument(
        "--partner-repeat", type=int, default=30, help="measured requests per partner-list case (default 30)"
    )
    parser.add_argument(
        "--only", default="", metavar="PARTS", help=f"run only these parts, comma-separated: {', '.join(PARTS)}"
    )
    parser.add_argument("--skip", default="", metavar="PARTS", help="skip these parts, comma-separated")
    parser.add_argument("--sqlite", action="store_true", help="use SQLite even when PostgreSQL is reachable")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default {RESULTS.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    args.levels = [int(x) for x in args.clients.split(",") if x.strip()]
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    skip = [x.strip() for x in args.skip.split(",") if x.strip()]
    unknown = [x for x in only + skip if x not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; the parts are {', '.join(PARTS)}")
    args.parts = [part for part in PARTS if (not only or part in only) and part not in skip]
    if not args.parts:
        parser.error("nothing left to run")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A terminated bench still stops its server and drops its database (the finally blocks).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.perf_counter()
    results: dict = {
        "benchmark": "fiscobridge",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "clients": args.levels,
            "gunicorn_workers": args.workers,
            "gunicorn_worker_class": "gthread" if args.threads > 1 else "sync",
            "gunicorn_threads": args.threads,
            "accounts": args.accounts,
            "tokens": args.accounts * args.tokens_per_account,
            "issue_count": args.issue_count,
            "parts": args.parts,
            "partner_keys": args.partner_keys,
            "partner_repeat": args.partner_repeat,
        },
        "http": {},
        "problems": [],
    }
    problems: list[str] = results["problems"]
    with tempfile.TemporaryDirectory(prefix="fiscobridge-bench-") as tmp:
        scratch = Path(tmp)
        db = Database.create(scratch, args.sqlite)
        results["database"] = db.vendor
        if db.note:
            results["database_note"] = db.note
        if db.vendor == "sqlite":
            log(f"WARNING: running on SQLite, not PostgreSQL. {db.note}")
        else:
            log(f"database: throwaway PostgreSQL database {db.name}")
        try:
            run_all(args, scratch, db, results, problems)
        except BenchError as error:
            problems.append(str(error))
            log(f"FAILED: {error}")
        finally:
            try:
                db.drop()
            except Exception as error:
                problems.append(f"could not drop {db.name}: {error}")
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_wall_s"] = round(time.perf_counter() - started, 1)
    results["ok"] = not problems
    results["targets"] = check_targets(results)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_report(results)
    log(f"results written to {args.out}")
    if problems:
        print("\n" + "!" * 78, file=sys.stderr)
        print("BENCHMARK HAD ERRORS — the figures above are not trustworthy:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print("!" * 78, file=sys.stderr)
        return 1
    return 0


def run_all(args, scratch: Path, db: Database, results: dict, problems: list[str]) -> None:
    env = bench_env(scratch, db.url)

    log("migrating the bench database")
    run_checked([*cli_argv(), "manage", "migrate", "--no-input", "-v", "0"], env, "migrate")
    if "http" in args.parts:
        partner = run_http(args, scratch, db, env, results, problems)
    elif "issuance" in args.parts:
        tenants = json.loads(
            run_checked([sys.executable, "-m", "bench.tenants", "setup", "0", "0"], env, "tenant setup")
            .strip()
            .splitlines()[-1]
        )
        partner = tenants["partner_email"]
    if "issuance" in args.parts:
        run_issuance(args, scratch, env, partner, results)
    # Last: its million keys would otherwise sit in the database under the HTTP rows.
    if "partner-list" in args.parts:
        run_partner_list(args, db, env, results, problems)


def run_http(args, scratch: Path, db: Database, env: dict, results: dict, problems: list[str]) -> str:
    """The HTTP rows; returns the e-mail of the bench partner (for the issuance run)."""
    log(f"creating 1 partner, {args.accounts} customer accounts, {args.accounts * args.tokens_per_account} API tokens")
    tenants = json.loads(
        run_checked(
            [sys.executable, "-m", "bench.tenants", "setup", str(args.accounts), str(args.tokens_per_account)],
            env,
            "tenant setup",
        )
        .strip()
        .splitlines()[-1]
    )
    partner = tenants["partner_email"]
    # Token i belongs to account i % accounts, so neighbouring clients act for different tenants.
    per_account = [c["tokens"] for c in tenants["customers"]]
    tokens = [
        per_account[i % args.accounts][i // args.accounts] for i in range(args.accounts * args.tokens_per_account)
    ]
    validate_codes, _ = issue_to_csv(env, partner, 256, scratch / "validate-pool.csv")

    server = Server(env, args.workers, scratch / "server.log", args.threads)
    activate_ok = 0
    try:
        log(f"starting `fiscobridge serve` with {args.workers} gunicorn workers on port {server.port}")
        server.wait_ready()
        probes = {**server.cpu_probes(), **db.cpu_probes()}

        def series(name: str, source, levels, on_result=None, label=None):
            label = label or name
            log(f"{label}: warm-up {args.warmup:.1f}s at {min(8, max(levels))} clients")
            warm = run_level(server.host, server.port, source, min(8, max(levels)), args.warmup, CHECKS[name], probes)
            if on_result:
                on_result(warm)
            if warm.errors:
                problems.append(f"{name} warm-up: {warm.errors} errors, e.g. {warm.error_samples[:2]}")
            out = {}
            for clients in levels:
                res = run_level(server.host, server.port, source, clients, args.duration, CHECKS[name], probes)
                if on_result:
                    on_result(res)
                out[clients] = res
                log(
                    f"{label:>8} x{clients:<3} {res.requests:>6} req  {res.throughput:8.1f} req/s  "
                    f"p50 {res.percentile_ms(50) or 0:7.2f} ms  p99 {res.percentile_ms(99) or 0:7.2f} ms  "
                    f"errors {res.errors}"
                )
                if res.errors:
                    problems.append(f"{name} at {clients} clients: {res.errors} errors, e.g. {res.error_samples[:2]}")
                if res.requests == 0:
                    problems.append(f"{name} at {clients} clients: no successful request")
            return out

        floor = series("healthz", healthz_source(), args.levels)
        validate = series("validate", validate_source(tokens, validate_codes), args.levels)

        # Enough fresh keys for activate: twice what validate managed at each level, plus warm-up.
        needed = (
            int(
                sum(2 * validate[c].throughput * args.duration for c in args.levels)
                + 2 * max(r.throughput for r in validate.values()) * args.warmup
            )
            + 500
        )
        log(f"issuing {needed} fresh keys for activate")
        pool = KeyPool(issue_to_csv(env, partner, needed, scratch / "activate-pool.csv")[0])

        def count_activations(res):
            nonlocal activate_ok
            activate_ok += res.requests

        activate = series("activate", activate_source(tokens, pool), args.levels, count_activations)
        for clients, res in activate.items():
            if res.exhausted:
                problems.append(
                    f"activate at {clients} clients ran out of fresh keys (pool of {needed}); "
                    f"its wall time is shorter than --duration"
                )
        # The machine hot paths: each account gets a certificate (its activations gave it seats)
        # and a trial connection; client i asks about those of its token's account.
        machine = json.loads(
            run_checked(
                [
                    sys.executable,
                    "-m",
                    "bench.tenants",
                    "machine",
                    *[str(c["account_id"]) for c in tenants["customers"]],
                ],
                env,
                "machine setup",
            )
            .strip()
            .splitlines()[-1]
        )
        entitlement = series("entitlement", entitlement_source(tokens, machine["certificates"]), args.levels)
        lease = series("lease", lease_source(tokens, machine["certificates"]), args.levels)
        usage = series("usage", usage_source(tokens, machine["connections"]), args.levels)
        # The floor again, after the endpoint rows: the machine's speed drifts over a run (a
        # virtual machine's CPU; the floor of one run once measured 20 % above the day's others),
        # so each ratio divides by the mean of the floor before and after the rows it compares.
        floor_again = series("healthz", healthz_source(), args.levels, label="healthz (again)")
    finally:
        server.stop()

    # The e-mail worker: its throughput on the activations' backlog, then whether a stalled mail
    # server slows activations down (it must not: e-mail is the worker's, never the request's).
    run_worker_throughput(args, scratch, env, results)
    stall_pool = KeyPool(issue_to_csv(env, partner, needed, scratch / "stall-pool.csv")[0])
    stalled = run_stalled_smtp_row(args, scratch, env, tokens, stall_pool, probes_for=db, problems=problems)
    activate_ok += stalled.requests + stalled.warmup_requests

    counts = json.loads(
        run_checked([sys.executable, "-m", "bench.tenants", "count"], env, "count").strip().splitlines()[-1]
    )
    results["database_version"] = counts.pop("database_version")
    results["database_after_http"] = counts
    if counts["keys_activated"] != activate_ok:
        problems.append(
            f"database holds {counts['keys_activated']} activated keys but {activate_ok} activations answered 201"
        )
    if counts["redeem_attempts_failed"]:
        problems.append(f"{counts['redeem_attempts_failed']} failed redeem attempts recorded (expected none)")

    for name, series_result in (
        ("healthz", floor),
        ("healthz_again", floor_again),
        ("validate", validate),
        ("activate", activate),
        ("entitlement", entitlement),
        ("lease", lease),
        ("usage", usage),
    ):
        results["http"][name] = {str(c): r.as_dict() for c, r in series_result.items()}
    normal = activate.get(8) or activate[max(activate)]
    results["smtp_stall"] = {
        "clients": stalled.concurrency,
        "activate_p50_ms": round(normal.percentile_ms(50) or 0, 2),
        "activate_p50_ms_smtp_stalled": round(stalled.percentile_ms(50) or 0, 2),
        "activate_p99_ms_smtp_stalled": round(stalled.percentile_ms(99) or 0, 2),
        "requests": stalled.requests,
        "errors": stalled.errors,
    }
    # CPU used by other work on the machine during each row (the bench shares the machine).
    cores = results["machine"]["cpus_usable"] or 1
    disturbed = []
    for name, rows in results["http"].items():
        for clients, row in rows.items():
            cpu = row["cpu_cores_busy"]
            if cpu.get("whole_machine") is None:
                continue
            other = cpu["whole_machine"] - sum(v for k, v in cpu.items() if k != "whole_machine" and v is not None)
            cpu["other_work"] = round(max(other, 0.0), 2)
            if other > 0.25 * cores:
                disturbed.append(f"{name} x{clients}")
    results["rows_disturbed_by_other_work"] = disturbed
    floor_mean = {c: (floor[c].throughput + floor_again[c].throughput) / 2 for c in args.levels}
    results["floor_req_per_s"] = {str(c): round(floor_mean[c], 1) for c in args.levels}
    results["ratio_to_floor"] = {
        name: {str(c): round(s[c].throughput / floor_mean[c], 4) if floor_mean[c] else None for c in args.levels}
        for name, s in (
            ("activate", activate),
            ("validate", validate),
            ("entitlement", entitlement),
            ("lease", lease),
            ("usage", usage),
        )
    }
    return partner


def run_worker_throughput(args, scratch: Path, env: dict, results: dict) -> None:
    """One `fiscobridge worker` on the activations' backlog, delivering to a local SMTP server:
    e-mails per second over `--duration` seconds (two e-mails per activation)."""
    from tests.smtp_server import SmtpSink

    sink = SmtpSink()
    worker_env = {**env, "EMAIL_HOST": sink.host, "EMAIL_PORT": str(sink.port), "EMAIL_USE_TLS": "false"}
    log(f"worker: sending the activations' e-mails to a local SMTP server for {args.duration:g}s")
    with open(scratch / "worker.log", "w") as worker_log:
        worker = subprocess.Popen(
            [*cli_argv(), "worker", "--quiet"], env=worker_env, cwd=ROOT, stdout=worker_log, stderr=subprocess.STDOUT
        )
        try:
            time.sleep(3)  # start-up, the first task
            first = len(sink.messages)
            t0 = time.perf_counter()
            time.sleep(args.duration)
            sent = len(sink.messages) - first
            elapsed = time.perf_counter() - t0
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            sink.close()
    results["worker"] = {"emails_sent": sent, "seconds": round(elapsed, 2), "emails_per_s": round(sent / elapsed, 1)}
    log(f"worker: {sent} e-mails in {elapsed:.1f}s = {sent / elapsed:.1f} e-mails/s")


def run_stalled_smtp_row(args, scratch: Path, env: dict, tokens, pool, *, probes_for, problems):
    """Activate at 8 clients while the mail server accepts connections and never answers, with a
    worker trying to send to it (and the web servers configured for it too)."""
    from tests.smtp_server import StalledSmtp

    stalled = StalledSmtp()
    stall_env = {**env, "EMAIL_HOST": stalled.host, "EMAIL_PORT": str(stalled.port), "EMAIL_USE_TLS": "false"}
    worker_log = open(scratch / "worker-stalled.log", "w")  # noqa: SIM115 (closed below)
    worker = subprocess.Popen(
        [*cli_argv(), "worker", "--quiet"], env=stall_env, cwd=ROOT, stdout=worker_log, stderr=subprocess.STDOUT
    )
    server = Server(stall_env, args.workers, scratch / "server-stalled.log", args.threads)
    try:
        server.wait_ready()
        probes = {**server.cpu_probes(), **probes_for.cpu_probes()}
        source = activate_source(tokens, pool)
        warm = run_level(server.host, server.port, source, 8, args.warmup, CHECKS["activate"], probes)
        result = run_level(server.host, server.port, source, 8, args.duration, CHECKS["activate"], probes)
        result.warmup_requests = warm.requests  # activations too: the database check counts them
        log(
            f"activate x8 with the SMTP server stalled ({stalled.connections} connections held): "
            f"p50 {result.percentile_ms(50) or 0:.2f} ms  p99 {result.percentile_ms(99) or 0:.2f} ms  "
            f"errors {result.errors}"
        )
        if result.errors:
            problems.append(
                f"activate with a stalled SMTP server: {result.errors} errors, e.g. {result.error_samples[:2]}"
            )
        return result
    finally:
        server.stop()
        worker.terminate()
        worker.wait(timeout=60)
        worker_log.close()
        stalled.close()


def run_issuance(args, scratch: Path, env: dict, partner: str, results: dict) -> None:
    # Issuance, with the server stopped so that nothing competes for the CPU.
    log("measuring CLI start-up: issue-keys --count 1")
    _, startup = issue_to_csv(env, partner, 1, scratch / "issue-1.csv")
    log(f"issuing {args.issue_count} keys with `fiscobridge issue-keys`")
    out = scratch / "issue-big.csv"
    try:
        _, big = issue_to_csv(env, partner, args.issue_count, out)
    finally:
        out.unlink(missing_ok=True)  # codes are secrets
    net = big["wall_s"] - startup["wall_s"]
    results["issuance"] = {
        "keys": args.issue_count,
        "wall_s": round(big["wall_s"], 2),
        "keys_per_s": round(args.issue_count / big["wall_s"], 1),
        "peak_rss_mib": round(big["peak_rss_mib"], 1),
        "cli_startup_s": round(startup["wall_s"], 2),
        "cli_startup_peak_rss_mib": round(startup["peak_rss_mib"], 1),
        "keys_per_s_excluding_startup": round(args.issue_count / net, 1) if net > 0 else None,
    }
    log(f"issued {args.issue_count} keys in {big['wall_s']:.1f}s, peak RSS {big['peak_rss_mib']:.0f} MiB")


def run_partner_list(args, db: Database, env: dict, results: dict, problems: list[str]) -> None:
    """The Partner Portal's keys list at 1,000,000 keys (bench/partner_list.py, in a child)."""
    if db.vendor != "postgresql":
        note = "skipped: the partner-list benchmark loads its keys with PostgreSQL's generate_series"
        results["partner_list"] = {"skipped": note}
        log(f"partner-list {note}")
        return
    log(
        f"partner-list: loading {args.partner_keys:,} keys for one partner, then timing its pages "
        f"({args.partner_repeat} requests per case)"
    )
    out = run_checked(
        [
            sys.executable,
            "-m",
            "bench.partner_list",
            "--keys",
            str(args.partner_keys),
            "--repeat",
            str(args.partner_repeat),
        ],
        env,
        "partner-list benchmark",
    )
    data = json.loads(out.strip().splitlines()[-1])
    results["partner_list"] = data
    log(f"partner-list: {data['keys']:,} keys loaded in {data['load_s']:.0f}s")
    for name, case in data["cases"].items():
        log(f"{name:>13}  p50 {case['p50_ms']:7.2f} ms  p99 {case['p99_ms']:7.2f} ms  rows {case['rows_on_page']}")
        if name in ("first", "deep", "filtered") and case["rows_on_page"] == 0:
            problems.append(f"partner-list {name}: the page showed no keys")


# --------------------------------------------------------------------------- report


def print_report(results: dict) -> None:
    from rich.console import Console

    console = Console(width=110)
    machine, settings = results["machine"], results["settings"]
    if results["http"]:
        _print_http(console, results)
    _print_issuance(console, results)
    _print_partner_list(console, results)
    _print_targets(console, results)
    if results.get("rows_disturbed_by_other_work"):
        console.print(
            f"[bold yellow]WARNING: other work on the machine used more than a quarter of the CPUs during "
            f"{len(results['rows_disturbed_by_other_work'])} of the HTTP rows "
            f"({', '.join(results['rows_disturbed_by_other_work'])}): their figures are lower than "
            f"on an idle machine.[/]"
        )
    console.print(
        f"database: {results.get('database')}"
        + (f" — [bold red]{results['database_note']}[/]" if results.get("database_note") else "")
        + f"; parts: {', '.join(settings.get('parts', PARTS))}"
        + f"; load average {machine['load_average_at_start']} → {machine.get('load_average_at_end')}"
        + f"; total {results.get('total_wall_s')}s"
    )
    if results["http"]:
        console.print(
            "healthz = GET /healthz, validate = POST /api/v1/keys/validate, activate = POST "
            "/api/v1/keys/activate (a fresh key each time), entitlement = GET /api/v1/pos/certificates/{uid}/"
            "entitlement, lease = POST /api/v1/pos/certificates/{uid}/lease, usage = POST "
            "/api/v1/integrations/connections/{uid}/usage (1 invoice). "
            "÷ floor: req/s divided by the mean of the two healthz rows' req/s (before and after the "
            "endpoint rows) at the same concurrency. CPU: cores busy during the row "
            "in the bench client process / gunicorn (master and workers, replaced ones included) / the "
            "PostgreSQL server (all its processes) / the whole machine, other work included."
        )
    sys.stdout.flush()


def _print_http(console, results: dict) -> None:
    from rich.table import Table

    machine, settings = results["machine"], results["settings"]
    db = results.get("database_version") or results.get("database")
    title = (
        f"FiscoBridge bench — {db}, gunicorn {settings['gunicorn_workers']} {settings['gunicorn_worker_class']} workers"
        + (f" × {settings['gunicorn_threads']} threads" if settings.get("gunicorn_threads", 1) > 1 else "")
        + ", "
        f"{machine['cpus_usable']} CPUs, Python {machine['python']}, {settings['duration_s']:g}s per row"
    )
    table = Table(title=title, title_justify="left")
    for header, justify in (
        ("endpoint", "left"),
        ("clients", "right"),
        ("requests", "right"),
        ("req/s", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("errors", "right"),
        ("÷ floor", "right"),
        ("CPU bench/web/db/all", "right"),
    ):
        table.add_column(header, justify=justify)
    labels = {"healthz": "healthz (floor)", "healthz_again": "healthz again"}
    for name in HTTP_ROWS:
        for clients, row in results["http"].get(name, {}).items():
            ratio = results.get("ratio_to_floor", {}).get(name, {}).get(clients)
            cpu = row["cpu_cores_busy"]
            table.add_row(
                labels.get(name, name),
                clients,
                str(row["requests"]),
                f"{row['req_per_s']:.1f}",
                _fmt(row["latency_ms"]["p50"]),
                _fmt(row["latency_ms"]["p99"]),
                f"[bold red]{row['errors']}[/]" if row["errors"] else "0",
                "—" if ratio is None else f"{ratio:.3f}",
                "/".join(
                    f"{cpu[k]:.1f}" if cpu.get(k) is not None else "-"
                    for k in ("bench_client", "gunicorn_server", "postgres_server", "whole_machine")
                ),
            )
        if name != HTTP_ROWS[-1] and results["http"].get(name):
            table.add_section()
    console.print(table)
    worker, stall = results.get("worker"), results.get("smtp_stall")
    if worker:
        console.print(
            f"E-mail worker (one process, local SMTP server): {worker['emails_sent']} e-mails in "
            f"{worker['seconds']:g}s = {worker['emails_per_s']:g} e-mails/s"
        )
    if stall:
        console.print(
            f"Activate x{stall['clients']} with the SMTP server stalled: "
            f"p50 {stall['activate_p50_ms_smtp_stalled']:.2f} ms (p99 {stall['activate_p99_ms_smtp_stalled']:.2f}) "
            f"vs {stall['activate_p50_ms']:.2f} ms in the activate row"
        )


def _print_issuance(console, results: dict) -> None:
    from rich.table import Table

    issuance = results.get("issuance")
    if issuance:
        issue = Table(title="Key issuance (fiscobridge issue-keys, one process)", title_justify="left")
        for header in ("keys", "wall s", "keys/s", "keys/s excl. start-up", "peak RSS MiB", "CLI start-up s"):
            issue.add_column(header, justify="right")
        issue.add_row(
            f"{issuance['keys']:,}",
            f"{issuance['wall_s']:.2f}",
            f"{issuance['keys_per_s']:,.0f}",
            _fmt(issuance["keys_per_s_excluding_startup"], "{:,.0f}"),
            f"{issuance['peak_rss_mib']:.1f}",
            f"{issuance['cli_startup_s']:.2f}",
        )
        console.print(issue)


HTTP_ROWS = ("healthz", "validate", "activate", "entitlement", "lease", "usage", "healthz_again")

# The targets of issue 9, checked against this run's figures (PostgreSQL, 2 cores).
TARGETS = (
    ("validate ÷ floor at 8 clients", ">=", 0.30, lambda r: r.get("ratio_to_floor", {}).get("validate", {}).get("8")),
    ("activate ÷ floor at 8 clients", ">=", 0.20, lambda r: r.get("ratio_to_floor", {}).get("activate", {}).get("8")),
    (
        "entitlement ÷ floor at 8 clients",
        ">=",
        0.45,
        lambda r: r.get("ratio_to_floor", {}).get("entitlement", {}).get("8"),
    ),
    ("usage ÷ floor at 8 clients", ">=", 0.30, lambda r: r.get("ratio_to_floor", {}).get("usage", {}).get("8")),
    *(
        (f"{name} p99 ms at 8 clients", "<=", 40.0, lambda r, n=name: _p99(r, n))
        for name in ("validate", "activate", "entitlement", "usage")
    ),
    ("activate p50 with SMTP stalled ÷ p50 without", "<=", 1.5, lambda r: _stall_ratio(r)),
    ("partner dashboard p50 ms at 1M keys", "<=", 30.0, lambda r: _partner(r, "dashboard")),
    ("oldest-reference search p50 ms at 1M keys", "<=", 30.0, lambda r: _partner(r, "filtered_old")),
)


def _p99(results: dict, name: str):
    return results["http"].get(name, {}).get("8", {}).get("latency_ms", {}).get("p99")


def _stall_ratio(results: dict):
    stall = results.get("smtp_stall")
    if not stall or not stall["activate_p50_ms"]:
        return None
    return round(stall["activate_p50_ms_smtp_stalled"] / stall["activate_p50_ms"], 3)


def _partner(results: dict, case: str):
    return (results.get("partner_list") or {}).get("cases", {}).get(case, {}).get("p50_ms")


def check_targets(results: dict) -> list[dict]:
    rows = []
    for label, op, target, measure in TARGETS:
        value = measure(results)
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        rows.append({"row": label, "target": f"{op} {target:g}", "measured": value, "met": met})
    return rows


def _print_targets(console, results: dict) -> None:
    from rich.table import Table

    table = Table(title="Targets (issue 9)", title_justify="left")
    for header in ("row", "target", "measured", "met"):
        table.add_column(header)
    for row in results.get("targets", []):
        met = {True: "[green]yes[/]", False: "[bold red]NO[/]", None: "— (not run)"}[row["met"]]
        value = "—" if row["measured"] is None else f"{row['measured']:g}"
        table.add_row(row["row"], row["target"], value, met)
    console.print(table)


PARTNER_CASES = {
    "first": "first page",
    "deep": "deep page (5,000 keys from the end)",
    "filtered": "available + newest batch's order no.",
    "filtered_old": "available + oldest batch's order no.",
    "hint": "available + a key's last group",
    "dashboard": "dashboard (counts, 90-day chart)",
}


def _print_partner_list(console, results: dict) -> None:
    from rich.table import Table

    data = results.get("partner_list")
    if not data:
        return
    if data.get("skipped"):
        console.print(f"[bold yellow]Partner keys list: {data['skipped']}[/]")
        return
    table = Table(
        title=f"Partner Portal at {data['keys']:,} keys of one partner ({data['batches']} batches, loaded in "
        f"{data['load_s']:.0f}s) — full HTML page via Django's test Client, "
        f"{data['repeat']} requests per row",
        title_justify="left",
    )
    for header, justify in (
        ("page", "left"),
        ("rows", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
        ("mean ms", "right"),
        ("list query: plan (its time in PostgreSQL)", "left"),
    ):
        table.add_column(header, justify=justify)
    for name, case in data["cases"].items():
        table.add_row(
            PARTNER_CASES.get(name, name),
            str(case["rows_on_page"]),
            f"{case['p50_ms']:.2f}",
            f"{case['p99_ms']:.2f}",
            f"{case['mean_ms']:.2f}",
            case.get("plan") or "—",
        )
    console.print(table)


def _fmt(value, pattern: str = "{:.2f}") -> str:
    return "—" if value is None else pattern.format(value)


if __name__ == "__main__":
    sys.exit(main())
