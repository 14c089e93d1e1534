"""Scale-out: two gunicorn servers, two RQ workers and two `rq cron` schedulers on one
PostgreSQL and one Redis, with a real SMTP sink and a webhook receiver on loopback, and
the files on S3 (moto's server, tests/s3_server.py).

Traffic goes through both servers (deliveries over the API, comments, decisions, link
renewals) while the schedulers sweep every 2 s (SIGNOFF_CRON_INTERVAL); reminders fall
due because the test moves `next_reminder_at` back in the database. Every effect must
happen once: each reminder, each email (by its Message-ID, which carries the outbox row
and so its idempotency key), each webhook delivery (by its event id) and each
certificate. Then one server, one worker and one scheduler are SIGKILLed mid-run (each
with its children): nothing acknowledged is lost, nothing is doubled, and the survivors
finish the work.

PostgreSQL only, `load`-marked, loopback only, every wait bounded:

    CI=true TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test_scale \\
        TEST_REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/pytest -q -m load tests/test_scale_out.py
"""
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
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    Certificate,
    Comment,
    Decision,
    OutboxMessage,
    OutboxStatus,
    Reminder,
    RequestStatus,
    ReviewRequest,
    Role,
    WebhookDelivery,
    utcnow,
)
from portal.notifications import webhooks
from portal.notifications.delivery import LEASE
from portal.people.api_tokens import create_token
from portal.workflow.links import issue_token
from tests.conftest import SECRET, _free_port, future
from tests.s3_server import bucket_keys, s3_server, s3_storage_fixture  # noqa: F401
from tests.test_load_faults import Reply, Visitor, _message_ids, _postgres_only, _run_threads
from tests.test_load_faults import S as State

ROOT = Path(__file__).resolve().parent.parent
SWEEP_SECONDS = 2  # each scheduler enqueues the sweep this often
DRAIN_SECONDS = 90  # the most any wait for the workers may take


class WebhookReceiver:
    """A loopback receiver that answers 204 and records each delivery's event id."""

    def __init__(self) -> None:
        self.event_ids: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert body["id"] == self.headers["Signoff-Event-Id"]
                with receiver.lock:
                    receiver.event_ids.append(body["id"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Fleet:
    """The deployment's processes, each the leader of its own process group, so a SIGKILL
    takes its children too (gunicorn's workers, an RQ worker's work horse)."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: dict[str, subprocess.Popen] = {}
        self.kills: list[str] = []
        self.rq_names: dict[str, str] = {}  # the name each worker has in Redis

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        with open(self.logs / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def web(self, name: str) -> str:
        """Start a server (the master and two workers); `answering` waits for it."""
        port = _free_port()
        self.start(name, [str(Path(sys.executable).with_name("gunicorn")), "-c",
                          "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                          "--threads", "4", "--no-control-socket", "wsgi:app"])
        return f"http://127.0.0.1:{port}"

    def answering(self, name: str, base: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while Visitor(base, timeout=5).send("GET", "/login").status != 200:
            assert self.procs[name].poll() is None, self.log(name)
            assert time.monotonic() < deadline, f"{name} did not answer in {timeout:.0f} s"
            time.sleep(0.2)

    def worker(self, name: str) -> None:
        self.rq_names[name] = f"{name}-{uuid.uuid4().hex[:6]}"
        self.start(name, [sys.executable, "-m", "rq.cli", "worker", "signoff", "--url",
                          self.env["REDIS_URL"], "--worker-class", "jobs.worker.AppWorker",
                          "--with-scheduler", "--name", self.rq_names[name]])

    def sending_within(self, name: str, timeout: float) -> str:
        """Wait (bounded) until this worker's horse sends a batch of mail, so that a kill
        lands mid-batch; the job it runs then ("" if it was caught at none)."""
        import redis
        from rq.worker import Worker

        connection = redis.Redis.from_url(self.env["REDIS_URL"])
        key = Worker.redis_worker_namespace_prefix + self.rq_names[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            worker = Worker.find_by_key(key, connection=connection)
            job = worker.get_current_job_id() if worker is not None else None
            if job and job.startswith("outbox-"):
                time.sleep(0.4)  # past the fork and the claim, into the sending
                return job
            time.sleep(0.02)
        return ""

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

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

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


def _fleet_env(app_config: Any, redis_url: str, smtp_port: int) -> dict[str, str]:
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


def _fresh() -> None:
    """End the test's own transaction, so the next read sees what the fleet committed."""
    db.session.commit()
    db.session.expire_all()


def _wait(what: str, done: Callable[[], bool], timeout: float = DRAIN_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while True:
        _fresh()
        if done():
            return
        assert time.monotonic() < deadline, f"not done after {timeout:.0f} s: {what}"
        time.sleep(0.5)


def _invited() -> list[int]:
    return list(db.session.scalars(select(Approver.id).where(
        Approver.status == ApproverStatus.INVITED)).all())


def _make_reminders_due(approver_ids: list[int]) -> None:
    """Fast-forward: the next reminder of each was due a minute ago."""
    db.session.execute(update(Approver).where(Approver.id.in_(approver_ids))
                       .values(next_reminder_at=utcnow() - timedelta(minutes=1)))
    _fresh()


def _reminder_numbers() -> Counter:
    return Counter(db.session.execute(select(Reminder.approver_id, Reminder.number)).all())


def _drained(receiver: WebhookReceiver) -> bool:
    open_rows = db.session.scalar(select(OutboxMessage.id).where(
        OutboxMessage.status == OutboxStatus.PENDING).limit(1))
    open_hooks = db.session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.status == OutboxStatus.PENDING).limit(1))
    approved = db.session.scalars(select(ReviewRequest.id).where(
        ReviewRequest.status == RequestStatus.APPROVED)).all()
    issued = db.session.scalars(select(Certificate.request_id)).all()
    return open_rows is None and open_hooks is None and set(approved) == set(issued)


def _expire_leases_taken_before(moment: Any) -> int:
    """Rows claimed by the killed work horse stay claimed for LEASE (5 minutes); as with
    reminders, time is moved in the database, and only for claims older than the kill."""
    moved = 0
    for model in (OutboxMessage, WebhookDelivery):
        moved += db.session.execute(update(model).where(
            model.status == OutboxStatus.PENDING, model.claimed_until.is_not(None),
            model.claimed_until <= moment + LEASE).values(
            claimed_until=utcnow() - timedelta(seconds=1))).rowcount
    _fresh()
    return moved


def _assert_exactly_once(smtp_sink: Any, receiver: WebhookReceiver, *,
                         repeats_allowed: int) -> dict[str, int]:
    """Every effect the database holds happened once at the far end (a repeat of the same
    Message-ID or event id, which receivers drop, only after a work horse was killed)."""
    rows = dict(db.session.execute(select(OutboxMessage.id, OutboxMessage.status)).all())
    assert set(rows.values()) <= {OutboxStatus.SENT, OutboxStatus.SKIPPED}, Counter(
        rows.values())
    sent = {i for i, status in rows.items() if status == OutboxStatus.SENT}
    arrived = _message_ids(smtp_sink)
    assert set(arrived) == sent, (f"missing at the sink: {sorted(sent - set(arrived))}; "
                                  f"not to be sent: {sorted(set(arrived) - sent)}")
    events = dict(db.session.execute(select(WebhookDelivery.event_id,
                                            WebhookDelivery.status)).all())
    assert set(events.values()) <= {OutboxStatus.SENT}, Counter(events.values())
    with receiver.lock:
        received = list(receiver.event_ids)
    assert set(received) == set(events)
    email_repeats = len(arrived) - len(set(arrived))
    hook_repeats = len(received) - len(set(received))
    assert email_repeats + hook_repeats <= repeats_allowed, (email_repeats, hook_repeats)

    # Each reminder row has its one email; each approved request its one certificate,
    # announced once.
    keys = set(db.session.scalars(select(OutboxMessage.idempotency_key)).all())
    reminders = _reminder_numbers()
    assert set(reminders.values()) <= {1}
    assert {f"reminder:{a}:{n}" for a, n in reminders} <= keys
    assert len([k for k in keys if k.startswith("reminder:")]) == len(reminders)
    issued = Counter(db.session.scalars(select(Certificate.request_id)).all())
    approved = db.session.scalars(select(ReviewRequest.id).where(
        ReviewRequest.status == RequestStatus.APPROVED)).all()
    assert issued == Counter(approved), "a certificate missing or issued twice"
    announced = db.session.scalars(select(WebhookDelivery.payload).where(
        WebhookDelivery.event_type == "certificate.issued")).all()
    assert len(announced) == len(issued)
    return {"emails": len(sent), "emails_arrived": len(arrived), "reminders": len(reminders),
            "webhooks": len(events), "webhooks_arrived": len(received),
            "certificates": len(issued)}


def _assert_files_on_s3(app: Any, s3_storage: dict[str, str]) -> None:
    """Every certificate the workers sealed is in the bucket, and `flask storage verify`
    finds each stored version, render and certificate whole."""
    in_bucket = set(bucket_keys(s3_storage["endpoint"], s3_storage["bucket"]))
    prefix = s3_storage["prefix"]
    for key in db.session.scalars(select(Certificate.storage_key)).all():
        assert f"{prefix}/{key[:2]}/{key[2:4]}/{key}" in in_bucket, key
    verified = app.test_cli_runner().invoke(args=["storage", "verify"])
    assert verified.exit_code == 0, verified.output


def _deliver(base: str, secret: str, deliverable_id: int, contact_ids: list[int]) -> Reply:
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


def _assert_nothing_acknowledged_was_lost(traffic: Traffic, prefix: str) -> int:
    stored = db.session.scalars(select(Comment.body).where(
        Comment.body.like(f"{prefix} %"))).all()
    assert len(stored) == len(set(stored)), "a comment was stored twice"
    acknowledged = {body for body, status in traffic.comments.items() if status == 303}
    assert acknowledged <= set(stored), f"acknowledged comments lost: {acknowledged - set(stored)}"
    assert set(stored) <= set(traffic.comments)
    decided = Counter(db.session.scalars(select(Decision.approver_id)).all())
    assert set(decided.values()) == {1}, "an approver decided twice"
    for approver_id, statuses in traffic.decisions.items():
        assert statuses[-1] == 303 or statuses == [None, 409], (approver_id, statuses)
        assert approver_id in decided, f"the decision of approver {approver_id} was lost"
    return len(stored)


@pytest.mark.load
def test_two_of_everything_do_each_thing_once_and_survive_a_kill_of_one_of_each(report,
        s3_storage, sealed, jobs_config, app, make_deliverable, make_user, staff, smtp_sink,
        tmp_path):
    _postgres_only(app)
    receiver = WebhookReceiver()
    webhooks.register(make_user(Role.ADMIN), receiver.url, "scale-out", allow_private=True)
    _token, api_secret = create_token(staff, "scale-out", ["read", "write"], None, utcnow())
    presented = [make_deliverable(State.DELIVERED, approvers=2) for _ in range(8)]
    ready = [make_deliverable(State.READY) for _ in range(4)]
    _fresh()
    fleet = Fleet(_fleet_env(app.config, jobs_config["REDIS_URL"], smtp_sink.port), tmp_path)
    traffic, prefix = Traffic(), f"scale-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    try:
        bases = [fleet.web("web-a"), fleet.web("web-b")]
        for name in ("a", "b"):
            fleet.worker(f"worker-{name}")
            fleet.scheduler(f"cron-{name}")
        for name, base in zip(("web-a", "web-b"), bases, strict=True):
            fleet.answering(name, base)
        phases = {"started": time.monotonic() - started}

        # 1. Deliveries over the API, then every approver opens their link, comments,
        # and some ask for a fresh link: both servers take turns.
        for n, d in enumerate(ready):
            contacts = [c.id for c in d.project.client.contacts]
            reply = traffic.note(_deliver(bases[n % 2], api_secret, d.id, contacts))
            assert reply.status == 201, reply
        _fresh()
        groups = [[a.id for a in d.open_request.approvers] for d in presented + ready]
        visitors = {aid: Visitor(bases[aid % 2]) for group in groups for aid in group}
        tokens = {aid: issue_token(db.session.get(Approver, aid)) for aid in visitors}

        def first_visit(aid: int) -> Callable[[], None]:
            def run() -> None:
                visitors[aid].open_link(tokens[aid])
                traffic.comment(visitors[aid], f"{prefix} approver {aid} first look")
                if aid % 3 == 0:
                    traffic.note(visitors[aid].send("POST", f"{visitors[aid].page}/renew", {},
                                                    what="renewal"))
            return run
        _run_threads([first_visit(aid) for aid in visitors], 90)
        phases["visits"] = time.monotonic() - started

        # 2. Reminders fall due for everyone still invited; two schedulers sweep every
        # 2 s, and each approver gets reminder 1 once, however many sweeps run.
        first_round = _invited()
        _make_reminders_due(first_round)
        _wait("reminder 1 for everyone", lambda: set(_reminder_numbers()) == {
            (aid, 1) for aid in first_round})
        time.sleep(3 * SWEEP_SECONDS)  # more sweeps: still one each
        phases["reminders"] = time.monotonic() - started

        # 3. Both approvers of four deliverables approve (certificates follow).
        deciders = [aid for group in groups[:4] for aid in group]
        _run_threads([lambda aid=aid: traffic.decide(visitors[aid], aid, None)
                      for aid in deciders], 60)
        _wait("outbox, webhooks and certificates done", lambda: _drained(receiver))
        before = _assert_exactly_once(smtp_sink, receiver, repeats_allowed=0)
        phases["decided"] = time.monotonic() - started
        report(f"before the kills: {len(traffic.replies)} requests, {before}")

        # 4. Under traffic, kill one of each; reminder 2 falls due for two deliverables
        # nobody decides on, while the rest of the approvers comment and approve.
        waiting = [aid for group in groups[6:8] for aid in group]
        deciding = [aid for group in groups[4:6] + groups[8:] for aid in group]
        _make_reminders_due(waiting)
        window, survivor = 8.0, bases[1]
        smtp_sink.delay = 0.1  # slow mail, so the killed worker is likelier caught mid-batch
        start = time.monotonic()

        def late_visit(n: int, aid: int) -> Callable[[], None]:
            def run() -> None:
                time.sleep(max(start + window * n / len(visitors) - time.monotonic(), 0))
                traffic.comment(visitors[aid], f"{prefix} approver {aid} second look")
                if visitors[aid].base != survivor and traffic.comments.get(
                        f"{prefix} approver {aid} second look") is None:
                    visitors[aid].base = survivor  # the balancer stops sending it there
                if aid in deciding:
                    traffic.decide(visitors[aid], aid, survivor)
            return run
        runner = threading.Thread(target=_run_threads, daemon=True, args=(
            [late_visit(n, aid) for n, aid in enumerate(waiting + deciding)], 60))
        runner.start()
        time.sleep(window * 0.4)
        caught_sending = fleet.sending_within("worker-a", window * 0.4)
        killed_at = utcnow()
        processes_killed = sum(fleet.kill(name) for name in ("web-a", "worker-a", "cron-a"))
        smtp_sink.delay = 0
        runner.join(timeout=65)
        assert not runner.is_alive()
        time.sleep(3)  # what the survivors claimed before the kill is done by now
        unleashed = _expire_leases_taken_before(killed_at)
        phases["killed"] = time.monotonic() - started

        # 5. The survivors finish: reminder 2 once each, every email, webhook and
        # certificate, and nothing anyone was told is recorded went missing.
        _wait("reminder 2 for the waiting", lambda: {(aid, 2) for aid in waiting}
              <= set(_reminder_numbers()))
        _wait("outbox, webhooks and certificates done after the kills",
              lambda: _drained(receiver))
        phases["drained"] = time.monotonic() - started
        time.sleep(2 * SWEEP_SECONDS)
        _fresh()
        comments = _assert_nothing_acknowledged_was_lost(traffic, prefix)
        after = _assert_exactly_once(smtp_sink, receiver, repeats_allowed=1)
        _assert_files_on_s3(app, s3_storage)
        assert {a for a, n in _reminder_numbers() if n == 2} == set(waiting)
        for name in ("web-b", "worker-b", "cron-b"):
            assert fleet.procs[name].poll() is None, fleet.log(name)
        assert Visitor(survivor).send("GET", "/login").status == 200
    finally:
        fleet.stop()
        receiver.stop()
    ran = time.monotonic() - started
    statuses = Counter(r.status for r in traffic.replies)
    report(f"scale-out: {len(traffic.replies)} requests in {ran:.0f} s {dict(statuses)}, "
           f"{comments} comments, {sum(1 for s in traffic.decisions.values() if s)} decisions, "
           f"{after['emails']} emails ({after['emails_arrived']} arrivals), "
           f"{after['reminders']} reminders, {after['webhooks']} webhook deliveries "
           f"({after['webhooks_arrived']} arrivals), {after['certificates']} certificates, "
           f"kills {fleet.kills} ({processes_killed} processes; the worker's job then: "
           f"{caught_sending or 'none'}), "
           f"leases run out by hand {unleashed}; "
           f"seconds from the start: { {k: round(v) for k, v in phases.items()} }")
