"""The scale-out test's deployment on loopback (tests/test_scale_out.py): gunicorn
servers, RQ workers and `rq cron` schedulers as real processes that a test can pause or
SIGKILL with their children, and the clients' side (API deliveries, what each browser was
told). The webhook receiver and the gunicorn starter are tests/servers.py's."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import SECRET, future
from tests.servers import Gunicorn
from tests.traffic import Reply, Visitor

ROOT = Path(__file__).resolve().parent.parent
SWEEP_SECONDS = 2  # each scheduler enqueues the sweep this often


class Fleet:
    """The deployment's processes, each the leader of its own process group, so a SIGKILL
    takes its children too (gunicorn's workers, an RQ worker's work horse)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: dict[str, subprocess.Popen] = {}
        self.kills: list[str] = []
        self.rq_names: dict[str, str] = {}  # the name each worker has in Redis

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        with open(self.logs / f"{name}.log", "wb") as log:
            self.procs[name] = subprocess.Popen(
                args, cwd=ROOT, env={**self.env, **(env or {})}, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def web(self, name: str) -> Gunicorn:
        """Start a server (the master and two workers); `wait_until_answering` waits."""
        server = Gunicorn(self.env, self.logs / f"{name}.log", new_session=True, extra_args=(
            "--workers", "2", "--threads", "4", "--no-control-socket"))
        self.procs[name] = server.proc
        return server

    def worker(self, name: str, smtp_port: int) -> None:
        """An RQ worker that mails through the SMTP server on `smtp_port`."""
        self.rq_names[name] = f"{name}-{uuid.uuid4().hex[:6]}"
        self.start(name, [sys.executable, "-m", "rq.cli", "worker", "signoff", "--url",
                          self.env["REDIS_URL"], "--worker-class", "jobs.worker.AppWorker",
                          "--with-scheduler", "--name", self.rq_names[name]],
                   env={"MAIL_PORT": str(smtp_port)})

    def current_job(self, name: str) -> str:
        """The id of the job this worker runs now, as it told Redis ("" if none)."""
        import redis
        from rq.worker import Worker

        connection = redis.Redis.from_url(self.env["REDIS_URL"])
        key = Worker.redis_worker_namespace_prefix + self.rq_names[name]
        worker = Worker.find_by_key(key, connection=connection)
        return (worker.get_current_job_id() or "") if worker is not None else ""

    @contextlib.contextmanager
    def paused(self, name: str) -> Iterator[None]:
        """SIGSTOP the process itself (not its group: a work horse it runs finishes), so
        it takes no new job until the block ends."""
        os.kill(self.procs[name].pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.procs[name].pid, signal.SIGCONT)

    def scheduler(self, name: str) -> None:
        self.start(name, [sys.executable, "-m", "rq.cli", "cron", "jobs/cron.py", "--url",
                          self.env["REDIS_URL"]])

    def kill(self, name: str) -> int:
        """SIGKILL the process, its group and its descendants: RQ's work horse puts itself
        in a group of its own (os.setpgrp), so the group alone would leave it running.
        Returns how many processes died."""
        proc = self.procs[name]
        assert proc.poll() is None, f"{name} had already stopped:\n{self.log(name)}"
        doomed = _descendants(proc.pid)  # found first: once the parent dies they move
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):  # already gone with the group
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self.kills.append(name)
        return 1 + len(doomed)

    def log(self, name: str, tail: int = 3000) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-tail:]

    def tracebacks(self) -> dict[str, str]:
        """The processes whose log holds a Python traceback, with the log's end."""
        return {name: self.log(name) for name in self.procs
                if "Traceback (most recent call last)" in self.log(name, tail=10**9)}

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # it ended meanwhile
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found


def fleet_env(app_config: Any, redis_url: str, smtp_port: int) -> dict[str, str]:
    """The test app's settings for the fleet's processes (all of them share one)."""
    env = {**os.environ,
           "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": SECRET,
           "REDIS_URL": redis_url, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(smtp_port),
           "MAIL_DEFAULT_SENDER": "review@agency.test", "MAIL_RETRY_INTERVALS": "1,1,1,1",
           "PUBLIC_BASE_URL": app_config["PUBLIC_BASE_URL"],
           "FILE_STORE": app_config["FILE_STORE"], "S3_REGION": app_config["S3_REGION"],
           "FILE_STORAGE_URL": app_config["FILE_STORAGE_URL"],
           "S3_ENDPOINT_URL": app_config["S3_ENDPOINT_URL"],  # credentials: os.environ's
           "INSTANCE_PATH": str(Path(app_config["FILE_STORE"]).parent / "instance"),
           "SIGNING_KEY": app_config["SIGNING_KEY"], "SIGNING_CERT": app_config["SIGNING_CERT"],
           # One address sends everything here: the per-IP limits must not be what answers.
           "CLIENT_RATE_LIMIT": "1000000 per minute", "RENEW_RATE_LIMIT": "1000000 per hour",
           "API_RATE_LIMIT": "1000000 per minute", "LOGIN_RATE_LIMIT": "1000000 per minute",
           # Comment notices go at the next sweep rather than after minutes of quiet.
           "COMMENT_QUIET_MINUTES": "0", "COMMENT_MAX_WAIT_MINUTES": "0",
           "SIGNOFF_CRON_INTERVAL": str(SWEEP_SECONDS), "WEB_CONCURRENCY": "2"}
    for name in ("FLASK_DEBUG", "PROMETHEUS_MULTIPROC_DIR", "GUNICORN_BIND"):
        env.pop(name, None)
    return env


def deliver(base: str, secret: str, deliverable_id: int, contact_ids: list[int]) -> Reply:
    """POST /api/v1/deliverables/<id>/deliver, as an integration would."""
    body = json.dumps({"approvers": contact_ids, "due_date": future(7).isoformat()}).encode()
    request = urllib.request.Request(
        f"{base}/api/v1/deliverables/{deliverable_id}/deliver", data=body, method="POST",
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode(errors="replace")
        exc.close()
    return Reply("delivery", status, text, started, time.monotonic() - started)


class Traffic:
    """Every request the test sends, and what each client was told."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.comments: dict[str, int | None] = {}  # body: the answer's status
        self.decisions: dict[int, list[int | None]] = {}  # approver id: statuses, in order
        self.lock = threading.Lock()

    def note(self, reply: Reply) -> Reply:
        with self.lock:
            self.replies.append(reply)
        return reply

    def comment(self, visitor: Visitor, body: str) -> None:
        reply = self.note(visitor.comment(body))
        with self.lock:
            self.comments[body] = reply.status

    def decide(self, visitor: Visitor, approver_id: int, survivor: str | None) -> None:
        """Approve; a browser whose server vanished tries again through the survivor
        (as a load balancer would send it), which may say 409: it was recorded."""
        statuses = [self.note(visitor.approve()).status]
        if statuses[0] is None and survivor and visitor.base != survivor:
            visitor.base = survivor
            statuses.append(self.note(visitor.approve()).status)
        with self.lock:
            self.decisions[approver_id] = statuses
