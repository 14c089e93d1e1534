"""Loopback servers, shared by the tests: an SMTP server that holds its mail at DATA until
told (and keeps what it accepted), a webhook receiver that records what it is sent, one that
trickles its answer and one that stalls, and gunicorn started with gunicorn.conf.py and
waited for until it answers. Every wait here is bounded."""
from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conftest import _free_port

ROOT = Path(__file__).resolve().parent.parent


class HoldingSmtpSink:
    """A real SMTP server on loopback; after `hold()` it keeps each message at DATA until
    `release()` (bounded), so the test decides when SMTP answers. What it accepted is in
    `accepted` (recipients) and `messages` ((recipients, parsed message), as SmtpSink's)."""

    def __init__(self) -> None:
        from email import message_from_bytes, policy

        from aiosmtpd.controller import Controller

        self.accepted: list[str] = []
        self.messages: list[tuple[list[str], Any]] = []
        self.lock = threading.Lock()
        self.arrived = threading.Event()
        self._gate = threading.Event()
        self._gate.set()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.arrived.set()
                await asyncio.get_running_loop().run_in_executor(None, sink._gate.wait, 30)
                parsed = message_from_bytes(envelope.content, policy=policy.default)
                with sink.lock:
                    sink.accepted.extend(envelope.rcpt_tos)
                    sink.messages.append((list(envelope.rcpt_tos), parsed))
                return "250 OK"

        self.port = _free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def hold(self) -> None:
        self.arrived.clear()
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def stop(self) -> None:
        self.release()
        self.controller.stop()


class RecordingReceiver:
    """A webhook receiver that records each delivery (headers, body) and answers 204, or
    503 for the next `fail_next` ones; a body's id must equal its Signoff-Event-Id."""

    def __init__(self, path: str = "/hook") -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert json.loads(body)["id"] == self.headers["Signoff-Event-Id"]
                with receiver.lock:
                    failing = receiver.fail_next > 0
                    if failing:
                        receiver.fail_next -= 1
                    else:
                        receiver.received.append((dict(self.headers), body))
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def event_ids(self) -> list[str]:
        with self.lock:
            return [json.loads(body)["id"] for _, body in self.received]

    def types(self) -> list[str]:
        with self.lock:
            return [json.loads(body)["type"] for _, body in self.received]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


class Gunicorn:
    """`gunicorn -c gunicorn.conf.py` serving wsgi:app on a free loopback port, with the
    given environment and extra arguments; `wait_until_answering` polls a path until 200."""

    def __init__(self, env: dict[str, str], out: Path, err: Path | None = None,
                 extra_args: tuple[str, ...] = (), new_session: bool = False) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.out, self.err = out, err or out
        executable = Path(sys.executable).with_name("gunicorn")
        assert executable.exists(), "gunicorn is a dependency (pyproject.toml)"
        with out.open("ab") as stdout, self.err.open("ab") as stderr:
            self.proc = subprocess.Popen(
                [str(executable), "-c", str(ROOT / "gunicorn.conf.py"), "--bind",
                 f"127.0.0.1:{self.port}", "--chdir", str(ROOT), *extra_args, "wsgi:app"],
                cwd=ROOT, env=env, stdout=stdout,
                stderr=subprocess.STDOUT if self.err == out else stderr,
                start_new_session=new_session)

    def wait_until_answering(self, path: str = "/healthz", timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, self.err.read_text(errors="replace")[-3000:]
            try:
                if http_get(self.base + path, timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, f"gunicorn did not answer in {timeout:.0f} s"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


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


