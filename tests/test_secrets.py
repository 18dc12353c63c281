"""Development secrets are made once, whole, even when several processes start at the same moment."""

import os
import stat
import threading
import time

from fiscobridge.core import secrets as dev_secrets
from fiscobridge.core.secrets import load_or_create_secret


def test_processes_starting_at_once_all_get_the_one_secret_never_an_empty_one(tmp_path, monkeypatch):
    real_fdopen = os.fdopen

    class SlowFile:
        """A file whose write takes a while: the moment when another process may look."""

        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, text):
            time.sleep(0.2)
            return self.handle.write(text)

    monkeypatch.setattr(dev_secrets.os, "fdopen", lambda fd, mode: SlowFile(real_fdopen(fd, mode)))
    path = tmp_path / "secrets" / "key"
    barrier = threading.Barrier(8)
    values: list[str] = []

    def start(delay):
        barrier.wait(timeout=10)
        time.sleep(delay)  # the later ones arrive while the first is still writing
        values.append(load_or_create_secret(path))

    threads = [threading.Thread(target=start, args=(0.05 * i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(values) == 8 and len(set(values)) == 1 and len(values[0]) >= 48, values
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["key"]  # no temporary file is left behind
    assert load_or_create_secret(path) == values[0]  # and later starts read the same one
