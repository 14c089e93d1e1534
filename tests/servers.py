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


class CountingSmtpSink:
    """The suite's SMTP sink (tests/conftest.SmtpSink: `messages`, `to`, `wait_for`,
    `delay`, `refuse_next`, `refuse_always`) that also counts its connections (`sessions`:
    one per EHLO), refuses the recipients in `refuse_rcpt` at RCPT (550), and hangs up
    without answering the `drop_at`-th DATA it is sent (that message is not accepted)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        self.sessions = 0
        self.refuse_next = 0
        self.refuse_always = False
        self.refuse_rcpt: set[str] = set()
        self.drop_at = 0  # 0: never
        self.delay = 0.0
        self.lock = threading.Lock()
        self._data_seen = 0
        sink = self

        class Handler:
            async def handle_EHLO(self, server: Any, session: Any, envelope: Any,
                                  hostname: str, responses: list[str]) -> list[str]:
                session.host_name = hostname
                with sink.lock:
                    sink.sessions += 1
                return responses

            async def handle_RCPT(self, server: Any, session: Any, envelope: Any,
                                  address: str, rcpt_options: list[str]) -> str:
                if address in sink.refuse_rcpt:
                    return "550 5.1.1 No such mailbox here"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                from email import message_from_bytes, policy

                if sink.delay:
                    await asyncio.sleep(sink.delay)
                with sink.lock:
                    sink._data_seen += 1
                    if sink.drop_at and sink._data_seen == sink.drop_at:
                        server.transport.close()  # gone before answering: not accepted
                        return "421 4.3.0 Gone"
                    if sink.refuse_always or sink.refuse_next > 0:
                        sink.refuse_next = max(sink.refuse_next - 1, 0)
                        return "451 4.3.0 Try again later"
                    parsed = message_from_bytes(envelope.content, policy=policy.default)
                    sink.messages.append((list(envelope.rcpt_tos), parsed))
                return "250 OK"

        self.port = _free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def to(self, address: str) -> list[Any]:
        with self.lock:
            return [m for rcpts, m in self.messages if address in rcpts]

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return
            time.sleep(0.05)
        raise AssertionError(f"expected {count} emails, got {len(self.messages)}")

    def stop(self) -> None:
        self.controller.stop()
