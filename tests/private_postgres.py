"""A PostgreSQL server of the test's own, to stop and start at will (fault tests): the machine's
server is shared by every other test and must never be restarted under them.

Uses the installed PostgreSQL binaries (`/usr/lib/postgresql/<version>/bin`); as root, runs them
as the `postgres` user (initdb refuses root). Trust authentication on 127.0.0.1, a free port, a
temporary data directory removed at the end.
"""

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.app_server import free_port


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise AssertionError(
            "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
        )
    return Path(found[-1]).parent


class PrivatePostgres:
    def __init__(self):
        self.bin = _binaries()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="fiscobridge-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 120) -> None:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"{argv[0]} failed: {result.stdout[-1500:]}{result.stderr[-1500:]}")

    def __enter__(self) -> "PrivatePostgres":
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        self.start()
        return self

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    def stop(self) -> None:
        """A fast shutdown: every connection is cut, as in a restart or a failover."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(AssertionError):  # already stopped
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
