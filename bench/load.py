"""A small closed-loop HTTP load generator: N client threads, one connection each.

Each client sends its next request as soon as the previous answer arrived, until the deadline.
Connections are kept alive when the server allows it; gunicorn's sync workers answer every
request with `Connection: close`, so the client then opens a new connection before its next
request (the connect time is part of the measured latency: a real client pays it too).

A request that fails at the connection level on a *reused* connection (the server closed it
while idle) is retried once on a new connection: with the same body when it is idempotent,
with a fresh body (a new activation key) otherwise, so no key is ever sent twice. Any other
failure, and any unexpected status, is an error.
"""

import http.client
import json
import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

RETRYABLE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None
    headers: dict
    expected_status: int
    idempotent: bool


# Returns the next request for client `index`, or None when there is nothing left to send.
RequestSource = Callable[[int], Request | None]
# Checks one successful body (called once per client, on its first success); raises on a bad body.
BodyCheck = Callable[[bytes], None]


@dataclass
class ClientStats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    retries: int = 0
    connections: int = 0
    exhausted: bool = False
    last_end: float = 0.0


@dataclass
class LevelResult:
    concurrency: int
    duration_s: float
    requests: int
    errors: int
    retries: int
    connections: int
    exhausted: bool
    latencies: list[float]
    error_samples: list[str]
    client_cpu_s: float
    other_cpu_s: dict[str, float]
    machine_busy_s: float | None

    @property
    def throughput(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def percentile_ms(self, p: float) -> float | None:
        return percentile(self.latencies, p) * 1000 if self.latencies else None

    def as_dict(self) -> dict:
        lat = self.latencies
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "retried_on_new_connection": self.retries,
            "connections_opened": self.connections,
            "wall_s": round(self.duration_s, 3),
            "req_per_s": round(self.throughput, 1),
            "latency_ms": {
                "p50": _r(self.percentile_ms(50)),
                "p90": _r(self.percentile_ms(90)),
                "p99": _r(self.percentile_ms(99)),
                "max": _r(max(lat) * 1000 if lat else None),
                "mean": _r(sum(lat) / len(lat) * 1000 if lat else None),
            },
            "stopped_early_pool_exhausted": self.exhausted,
            "error_samples": self.error_samples,
            "cpu_cores_busy": {
                "bench_client": round(self.client_cpu_s / self.duration_s, 2),
                **{name: round(seconds / self.duration_s, 2) for name, seconds in self.other_cpu_s.items()},
                # Every process on the machine (the bench shares it with other work):
                "whole_machine": (
                    round(self.machine_busy_s / self.duration_s, 2) if self.machine_busy_s is not None else None
                ),
            },
        }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * p // 100)))
    return ordered[int(rank) - 1]


def _client(
    index: int,
    host: str,
    port: int,
    source: RequestSource,
    check: BodyCheck | None,
    start: threading.Event,
    deadline_box: list[float],
    stats: ClientStats,
) -> None:
    conn: http.client.HTTPConnection | None = None
    checked = check is None
    start.wait()
    deadline = deadline_box[0]
    try:
        while time.perf_counter() < deadline:
            req = source(index)
            if req is None:
                stats.exhausted = True
                break
            t0 = time.perf_counter()
            for attempt in (0, 1):
                fresh = conn is None
                if fresh:
                    conn = http.client.HTTPConnection(host, port, timeout=60)
                    stats.connections += 1
                try:
                    conn.request(req.method, req.path, body=req.body, headers=req.headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except RETRYABLE as error:
                    conn.close()
                    conn = None
                    if fresh or attempt == 1:
                        _error(stats, f"{type(error).__name__}: {error}")
                        break
                    stats.retries += 1
                    if not req.idempotent:
                        req = source(index)  # never resend a body that may have been processed
                        if req is None:
                            stats.exhausted = True
                            break
                    continue
                except (OSError, http.client.HTTPException) as error:
                    conn.close()
                    conn = None
                    _error(stats, f"{type(error).__name__}: {error}")
                    break
                elapsed = time.perf_counter() - t0
                if resp.will_close:
                    conn.close()
                    conn = None
                if resp.status != req.expected_status:
                    _error(stats, f"HTTP {resp.status} (expected {req.expected_status}): {data[:300]!r}")
                    break
                if not checked:
                    try:
                        check(data)
                    except Exception as error:
                        _error(stats, f"unexpected body ({error}): {data[:300]!r}")
                        break
                    checked = True
                stats.latencies.append(elapsed)
                break
            stats.last_end = time.perf_counter()
            if stats.exhausted:
                break
    finally:
        if conn is not None:
            conn.close()


def _error(stats: ClientStats, message: str) -> None:
    stats.errors += 1
    if len(stats.error_samples) < 3:
        stats.error_samples.append(message)


def run_level(
    host: str,
    port: int,
    source: RequestSource,
    concurrency: int,
    duration: float,
    check: BodyCheck | None = None,
    cpu_probes: dict[str, Callable[[], float]] | None = None,
) -> LevelResult:
    """Run `concurrency` clients for `duration` seconds. `cpu_probes` name groups of processes
    (e.g. the gunicorn server, the database server), each by a function that returns the group's
    CPU seconds so far (`tree_cpu_seconds`), which is measured over the run."""
    stats = [ClientStats() for _ in range(concurrency)]
    start = threading.Event()
    deadline_box = [0.0]
    threads = [
        threading.Thread(
            target=_client, args=(i, host, port, source, check, start, deadline_box, stats[i]), daemon=True
        )
        for i in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    probes = cpu_probes or {}
    other0 = {name: probe() for name, probe in probes.items()}
    cpu0 = _self_cpu()
    machine0 = _machine_busy()
    t_start = time.perf_counter()
    deadline_box[0] = t_start + duration
    start.set()
    for thread in threads:
        thread.join()
    t_end = max([s.last_end for s in stats] + [t_start])
    wall = max(t_end - t_start, 1e-9)
    client_cpu = _self_cpu() - cpu0
    machine1 = _machine_busy()
    machine = machine1 - machine0 if machine0 is not None and machine1 is not None else None
    other = {name: probe() - other0[name] for name, probe in probes.items()}
    latencies = [lat for s in stats for lat in s.latencies]
    return LevelResult(
        concurrency=concurrency,
        duration_s=wall,
        requests=len(latencies),
        errors=sum(s.errors for s in stats),
        retries=sum(s.retries for s in stats),
        connections=sum(s.connections for s in stats),
        exhausted=any(s.exhausted for s in stats),
        latencies=latencies,
        error_samples=[m for s in stats for m in s.error_samples][:5],
        client_cpu_s=client_cpu,
        other_cpu_s=other,
        machine_busy_s=machine,
    )


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_TICK = os.sysconf("SC_CLK_TCK")


def _stat_cpu(pid: int) -> int:
    """Clock ticks of CPU used by a process and by its children that it has reaped (0 once gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime (fields 14 to 17)
    except (OSError, IndexError, ValueError):
        return 0


def tree_cpu_seconds(parent: int) -> float:
    """User + system CPU of a process and its children so far, from /proc, including the children
    that have exited: a child's time moves into its parent's when the parent reaps it. So the
    figure keeps growing when gunicorn replaces a worker (max_requests) or a database backend
    ends; a list of pids taken at the start lost the time of the replaced ones."""
    try:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    except OSError:
        children = []
    return (sum(_stat_cpu(int(child)) for child in children) + _stat_cpu(parent)) / _TICK


def _machine_busy() -> float | None:
    """CPU seconds spent by the whole machine (all cores, not idle or iowait), from /proc/stat."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    guest = sum(fields[8:10]) if len(fields) > 9 else 0  # already counted in user and nice
    return (sum(fields) - idle - guest) / _TICK


def json_check(predicate: Callable[[object], bool], what: str) -> BodyCheck:
    def check(data: bytes) -> None:
        if not predicate(json.loads(data)):
            raise ValueError(what)

    return check
