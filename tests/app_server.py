"""A real app server for tests that need real processes: gunicorn with our configuration
(fiscobridge/gunicorn_conf.py), on a free port, on the test database, its output in a file."""

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from django.db import connection

from fiscobridge.cli import gunicorn_argv

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def current_database_url() -> str:
    """The URL of the database the tests run on (PostgreSQL or the SQLite test file)."""
    params = connection.settings_dict
    if connection.vendor == "postgresql":
        password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
        return f"postgres://{params['USER']}{password}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
    return f"sqlite:///{params['NAME']}"


class AppServer:
    """`with AppServer(workers=2, env={...}) as server:` … `server.url`, `server.log_text()`."""

    def __init__(self, *, workers: int = 2, env: dict | None = None, database_url: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkstemp(prefix="fiscobridge-server-", suffix=".log")[1])
        self.environment = {
            **os.environ,
            "DATABASE_URL": database_url or current_database_url(),
            "DATABASE_CONN_MAX_AGE": "0",
            **(env or {}),
        }
        self.argv = gunicorn_argv(bind=f"127.0.0.1:{self.port}", workers=workers)
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "AppServer":
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.environment, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited:\n{self.log_text()[-3000:]}")
            try:
                # Wait for the answer as long as the deadline allows: a probe given up early would
                # still be answered (and counted, logged) by the server after we moved on.
                remaining = max(1.0, deadline - time.monotonic())
                if httpx.get(f"{self.url}/healthz", timeout=remaining).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server did not answer within {timeout:.0f} s:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def stop_process_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to a server started in its own session (start_new_session=True), SIGKILL if it
    does not stop in time: gunicorn and its workers all go."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
