"""Loopback servers that misbehave on cue, shared by tests/test_embedded.py and the security
catalogue: an SMTP server that holds its mail, a webhook receiver that trickles its answer
and one that stalls. Every wait here is bounded."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import _free_port


class HoldingSmtpSink:
    """A real SMTP server on loopback; after `hold()` it keeps each message at DATA until
    `release()` (bounded), so the test decides when SMTP answers."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.accepted: list[str] = []
        self.arrived = threading.Event()
        self._gate = threading.Event()
        self._gate.set()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.arrived.set()
                await asyncio.get_running_loop().run_in_executor(None, sink._gate.wait, 30)
                sink.accepted.extend(envelope.rcpt_tos)
                return "250 OK"

        self.port = _free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def hold(self) -> None:
        self.arrived.clear()
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()


class Trickler:
    """A receiver that answers a byte at a time, one every 0.2 s, for at most 5 s: every
    read gets something, so a per-read timeout never fires; only a deadline stops it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.hung_up = threading.Event()  # the sender closed before we were done
        self.lasted = 0.0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        started = time.monotonic()
        with connection:
            connection.recv(65536)
            try:
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(25):  # a header line that never ends
                    time.sleep(0.2)
                    connection.sendall(b"z")
            except OSError:
                self.hung_up.set()
        self.lasted = time.monotonic() - started

    def stop(self) -> None:
        self.listener.close()
        self.thread.join(timeout=10)


class StallingReceiver:
    """Takes the POST, then answers 204 only when the test lets it (bounded)."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.posts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts += 1
                receiver.arrived.set()
                receiver.release.wait(20)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


