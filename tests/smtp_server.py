"""Local SMTP servers for tests and the bench, in a thread of the calling process.

- `SmtpSink`: a minimal, real SMTP server (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that
  accepts every message and keeps it, so delivery is tested over a socket, not with a mock;
- `StalledSmtp`: accepts TCP connections and then says nothing, as a mail server that hangs
  would; it counts the connections it got.
"""

import socket
import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes


class _SmtpHandler(socketserver.StreamRequestHandler):
    timeout = 30

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self) -> None:
        server: SmtpSink = self.server.sink  # type: ignore[attr-defined]
        self.reply("220 sink.localhost ESMTP ready")
        sender, recipients = "", []
        while line := self.rfile.readline():
            command = line.decode(errors="replace").strip()
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 sink.localhost")
            elif verb == "MAIL":
                sender, recipients = command.partition(":")[2].strip(), []
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.partition(":")[2].strip())
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                body = bytearray()
                while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    body += chunk
                server.add(Received(sender, recipients, bytes(body)))
                self.reply("250 OK: queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@dataclass
class SmtpSink:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = _Server((self.host, self.port), _SmtpHandler)
        self._server.sink = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def add(self, message: Received) -> None:
        with self._lock:
            self.messages.append(message)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class StalledSmtp:
    """Accepts connections and never answers (not even the 220 greeting)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._socket = socket.create_server((host, 0))
        self.host, self.port = host, self._socket.getsockname()[1]
        self.connections = 0
        self._held: list[socket.socket] = []
        self._open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self._open:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            self._held.append(conn)  # held open, silent

    def close(self) -> None:
        self._open = False
        self._socket.close()
        for conn in self._held:
            conn.close()
