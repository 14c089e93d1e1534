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
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portal.extensions import db
from tests.conftest import SECRET
from tests.servers import Gunicorn, http_get
from tests.traffic import postgresql_only  # noqa: F401

WORKER = re.compile(r"worker=<(\d+)>")


class Staller:
    """Accepts connections and never answers: a Redis that hangs, so /readyz takes its
    whole deadline (a request in flight long enough to SIGTERM under)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._hold, daemon=True).start()

    def waiting(self) -> int:
        """How many connections it holds (each a Redis check stuck on it)."""
        return len(self.held)

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


class Server(Gunicorn):
    staller: Staller

    def lines(self, path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def healthz_lines(self) -> int:
        return sum('"GET /healthz' in line["message"] for line in self.lines(self.out))


@pytest.fixture
def gunicorn(app, tmp_path) -> Iterator[Server]:
    """Gunicorn on the test database, with a Redis that stalls. Runs once: on PostgreSQL
    (its subject is the server, not the database)."""
    staller = Staller()
    db.session.commit()
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "SECRET_KEY": SECRET, "REDIS_URL": f"redis://127.0.0.1:{staller.port}/0",
           "INSTANCE_PATH": str(tmp_path / "instance"), "FILE_STORE": str(tmp_path / "files"),
           "LOG_FORMAT": "json", "GUNICORN_GRACEFUL_TIMEOUT": "20"}
    for name in ("PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY", "METRICS_TOKEN", "FLASK_DEBUG"):
        env.pop(name, None)  # the config file's own choices, and loopback-only metrics
    server = Server(env, tmp_path / "gunicorn.out", tmp_path / "gunicorn.err", ("-w", "2"))
    server.staller = staller
    try:
        server.wait_until_answering(timeout=60)
        yield server
    finally:
        server.stop()
        staller.close()


def _healthz_count(metrics: str) -> float:
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if (sample.name == "signoff_http_request_duration_seconds_count"
                    and sample.labels.get("endpoint") == "ops_health.healthz"):
                return sample.value
    return 0.0


def _until(done: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"not after {timeout:.0f} s: {what}"
        time.sleep(0.05)


@pytest.mark.usefixtures("postgresql_only")  # first: the SQLite half skips before any start
def test_two_workers_one_scrape_and_a_graceful_stop(gunicorn):
    # Traffic until both workers have answered (their pids are on the access lines).
    sent = 1  # the readiness poll's last /healthz
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(10):
            statuses = list(pool.map(lambda _: http_get(f"{gunicorn.base}/healthz")[0],
                                     range(40)))
            assert set(statuses) == {200}
            sent += len(statuses)
            _until(lambda sent=sent: gunicorn.healthz_lines() >= sent, "an access line each")
            served_by = {m.group(1) for line in gunicorn.lines(gunicorn.out)
                         if (m := WORKER.search(line["message"]))}
            if len(served_by) == 2:
                break
    assert len(served_by) == 2, "one worker answered everything"

    # Any one worker's scrape counts what both served.
    status, body = http_get(f"{gunicorn.base}/-/metrics")
    assert status == 200
    counted = _healthz_count(body.decode())
    assert counted >= sent  # the poll's earlier tries count too
    # Gunicorn writes an access line after its answer: wait for the last ones to land.
    _until(lambda: gunicorn.healthz_lines() >= counted, "the access lines of the counted")
    assert counted == gunicorn.healthz_lines()

    # Readiness: the database and files are there, the (stalling) Redis is not.
    status, body = http_get(f"{gunicorn.base}/readyz")
    assert status == 503
    assert json.loads(body)["checks"] == {"database": "ok", "redis": "failed",
                                          "storage": "ok"}

    # SIGTERM while a request is in flight: it is answered, then the server exits cleanly.
    # SIGTERM only once the request is inside its Redis check, held by the staller. (A probe
    # that meets the same worker's last check still hanging shares it and opens no
    # connection: then it is asked again, a bounded number of times.)
    answer: dict[str, object] = {}
    for _ in range(5):
        stalled = gunicorn.staller.waiting()
        in_flight = threading.Thread(target=lambda: answer.update(zip(
            ("status", "body"), http_get(f"{gunicorn.base}/readyz", timeout=30), strict=True)))
        in_flight.start()
        _until(lambda stalled=stalled, thread=in_flight: gunicorn.staller.waiting() > stalled
               or not thread.is_alive(), "the readiness check reached Redis")
        if gunicorn.staller.waiting() > stalled:
            break
        in_flight.join(timeout=30)
        answer.clear()  # that answer came from a shared check, not from under the SIGTERM
    assert gunicorn.staller.waiting() > stalled, "no readiness check reached Redis"
    gunicorn.proc.send_signal(signal.SIGTERM)
    in_flight.join(timeout=30)
    assert answer.get("status") == 503, answer
    assert gunicorn.proc.wait(timeout=30) == 0

    errors = gunicorn.lines(gunicorn.err)  # every line JSON, each with a request id field
    assert all("request_id" in line for line in errors)
    messages = [line["message"] for line in errors]
    assert any("Handling signal: term" in m for m in messages), messages
    assert any("Shutting down: Master" in m for m in messages), messages
