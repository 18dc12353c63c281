"""Development secrets: created once with a CSPRNG and kept, owner-readable only, in the data dir."""

import os
import secrets
import tempfile
from pathlib import Path


def load_or_create_secret(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(48)
    # Written in full to a private temporary file, then linked into place: the secret appears
    # whole or not at all, and of two processes starting at once exactly one link succeeds; the
    # other reads the winner's value (never an empty file, as O_EXCL on the final name allowed).
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return path.read_text().strip()
    finally:
        os.unlink(temporary)
    return value
