"""Runs localstripe (a stateful Stripe-compatible server from PyPI) on 127.0.0.1, for tests.

`python tests/localstripe_server.py` binds a free loopback port, prints it on the first line of
stdout and serves until killed. Unlike `localstripe --port`, it listens on loopback only and
keeps its state in memory (localstripe pickles its store to a fixed /tmp path on every write,
which two test runs on one machine would share).
"""

import socket

from aiohttp import web
from localstripe import resources, server

resources.Store.dump_to_disk = lambda self: None


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    web.run_app(server.app, sock=sock, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main()
