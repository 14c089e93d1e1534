"""The real thing: gunicorn with gunicorn.conf.py, 2 workers on loopback, JSON logs. Both
workers answer, one scrape of /-/metrics adds up what both served (Prometheus'
multiprocess mode), and SIGTERM lets a request in flight finish before the server exits.
Bounded: at most a few hundred requests to 127.0.0.1, and every wait has a deadline."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portal.extensions import db
from tests.conftest import SECRET, _free_port

ROOT = Path(__file__).resolve().parent.parent
WORKER = re.compile(r"worker=<(\d+)>")


def _get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Staller:
    """Accepts connections and never answers: a Redis that hangs, so /readyz takes its
    whole deadline (a request in flight long enough to SIGTERM under)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._hold, daemon=True).start()

    def _hold(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


class Server:
    def __init__(self, proc: subprocess.Popen, base: str, out: Path, err: Path) -> None:
        self.proc, self.base, self.out, self.err = proc, base, out, err

    def lines(self, path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def gunicorn(app, tmp_path) -> Iterator[Server]:
    executable = Path(sys.executable).with_name("gunicorn")
    assert executable.exists(), "gunicorn is a dependency (pyproject.toml)"
    staller = Staller()
    db.session.commit()
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "SECRET_KEY": SECRET, "REDIS_URL": f"redis://127.0.0.1:{staller.port}/0",
           "INSTANCE_PATH": str(tmp_path / "instance"), "FILE_STORE": str(tmp_path / "files"),
           "LOG_FORMAT": "json", "GUNICORN_GRACEFUL_TIMEOUT": "20"}
    for name in ("PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY", "METRICS_TOKEN", "FLASK_DEBUG"):
        env.pop(name, None)  # the config file's own choices, and loopback-only metrics
    out, err = tmp_path / "gunicorn.out", tmp_path / "gunicorn.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [str(executable), "-c", str(ROOT / "gunicorn.conf.py"), "--bind",
             f"127.0.0.1:{port}", "-w", "2", "--chdir", str(ROOT), "wsgi:app"],
            env=env, stdout=stdout, stderr=stderr)
    server = Server(proc, f"http://127.0.0.1:{port}", out, err)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, err.read_text()
            try:
                if _get(f"{server.base}/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer in 60 s"
            time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        staller.close()


def _healthz_count(metrics: str) -> float:
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if (sample.name == "signoff_http_request_duration_seconds_count"
                    and sample.labels.get("endpoint") == "ops_health.healthz"):
                return sample.value
    return 0.0


def test_two_workers_one_scrape_and_a_graceful_stop(gunicorn):
    # Traffic until both workers have answered (their pids are on the access lines).
    sent = 1  # the readiness poll's last /healthz
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(10):
            statuses = list(pool.map(lambda _: _get(f"{gunicorn.base}/healthz")[0], range(40)))
            assert set(statuses) == {200}
            sent += len(statuses)
            time.sleep(0.2)  # let the access lines reach the file
            served_by = {m.group(1) for line in gunicorn.lines(gunicorn.out)
                         if (m := WORKER.search(line["message"]))}
            if len(served_by) == 2:
                break
    assert len(served_by) == 2, "one worker answered everything"

    # Any one worker's scrape counts what both served.
    status, body = _get(f"{gunicorn.base}/-/metrics")
    assert status == 200
    assert _healthz_count(body.decode()) >= sent  # the poll's earlier tries count too
    healthz_lines = [line for line in gunicorn.lines(gunicorn.out)
                     if '"GET /healthz' in line["message"]]
    assert _healthz_count(body.decode()) == len(healthz_lines)

    # Readiness: the database and files are there, the (stalling) Redis is not.
    status, body = _get(f"{gunicorn.base}/readyz")
    assert status == 503
    assert json.loads(body)["checks"] == {"database": "ok", "redis": "failed",
                                          "storage": "ok"}

    # SIGTERM while a request is in flight: it is answered, then the server exits cleanly.
    answer: dict[str, object] = {}
    in_flight = threading.Thread(target=lambda: answer.update(
        zip(("status", "body"), _get(f"{gunicorn.base}/readyz", timeout=30), strict=True)))
    in_flight.start()
    time.sleep(0.5)  # the request is waiting on the stalled Redis now
    gunicorn.proc.send_signal(signal.SIGTERM)
    in_flight.join(timeout=30)
    assert answer.get("status") == 503, answer
    assert gunicorn.proc.wait(timeout=30) == 0

    errors = gunicorn.lines(gunicorn.err)  # every line JSON, each with a request id field
    assert all("request_id" in line for line in errors)
    messages = [line["message"] for line in errors]
    assert any("Handling signal: term" in m for m in messages), messages
    assert any("Shutting down: Master" in m for m in messages), messages
