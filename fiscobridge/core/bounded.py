"""Run one CPU-heavy call with a hard bound on its time, in a forked child process.

Some work cannot be interrupted from Python once it has started: OpenSSL deriving a key from a
password with the number of rounds an uploaded file asks for runs in C until it is done. Running
it in a child (fork: no start-up cost, the child shares the parent's loaded code) lets the
request give up after a few seconds and answer, while the kernel stops the child at its CPU
limit. The child does nothing but the call: no database, no logging, and it leaves with
`os._exit` so that nothing of the parent (connections, atexit handlers) is touched.

Only for pure functions of their arguments whose result and exceptions can be pickled.
"""

import ctypes
import os
import pickle
import resource
import select
import signal
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class TimeLimitExceeded(Exception):
    """The call ran out of its CPU or wall-clock time and was stopped."""


def call_with_time_limit(function: Callable[..., T], *args, cpu_seconds: int, wall_seconds: float) -> T:
    """`function(*args)` in a child process: its result, or the exception it raised.

    The child may use at most `cpu_seconds` of CPU (the kernel stops it) and `wall_seconds` of
    real time (the parent kills it: a busy machine must not keep a request waiting either).
    Raises TimeLimitExceeded when either runs out.
    """
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        _die_with(parent)
        _run_child(function, args, cpu_seconds, write_end)
    os.close(write_end)
    try:
        payload = _read_until(read_end, time.monotonic() + wall_seconds)
    finally:
        os.close(read_end)
        _reap(pid)
    if payload is None:
        raise TimeLimitExceeded()
    outcome, value = pickle.loads(payload)
    if outcome == "raised":
        raise value
    return value


def _die_with(parent: int) -> None:
    """Linux: the child is killed when its parent dies (a web worker killed by its timeout leaves
    no orphan burning CPU until its own limit)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # elsewhere the CPU limit still ends it
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _run_child(function, args, cpu_seconds: int, write_end: int) -> None:
    status = 0
    try:
        # Soft limit: SIGXCPU (default action ends the process); hard limit one second later: SIGKILL.
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        try:
            result = ("returned", function(*args))
        except Exception as error:  # handed to the parent, which raises it
            result = ("raised", error)
        try:
            payload = pickle.dumps(result)
        except Exception:
            payload = pickle.dumps(("raised", RuntimeError(f"unpicklable outcome of {function.__name__}")))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _read_until(fd: int, deadline: float) -> bytes | None:
    """Everything the child writes, or None when it died or the deadline passed first."""
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 65536)
        if not chunk:  # the child closed its end: finished, or stopped by its CPU limit
            return b"".join(chunks) or None
        chunks.append(chunk)


def _reap(pid: int) -> None:
    """Stop the child if it still runs, and collect it (no zombie left behind)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass
