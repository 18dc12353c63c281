"""Runs localstripe (a stateful Stripe-compatible server from PyPI) on 127.0.0.1, for tests.

`python tests/localstripe_server.py` binds a free loopback port, prints it on the first line of
stdout and serves until killed or until its standard input closes (the tests that started it are
gone). Unlike `localstripe --port`, it listens on loopback only and keeps its state in memory
(localstripe pickles its store to a fixed /tmp path on every write, which two test runs, or two
xdist workers, on one machine would share).
"""

import os
import socket
import sys
import threading

from aiohttp import web
from localstripe import resources, server

resources.Store.dump_to_disk = lambda self: None


def _exit_with_the_tests() -> None:
    sys.stdin.read()  # end of file: the test process that started us is gone, however it ended
    os._exit(0)


def main() -> None:
    threading.Thread(target=_exit_with_the_tests, daemon=True).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    web.run_app(server.app, sock=sock, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main()
