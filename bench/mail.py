"""Emails per second through the real sending path, against raw smtplib to the same sink.

    .venv/bin/python bench/mail.py --messages 2000 [--db sqlite|postgres]

Builds a fresh database with the real migrations (SQLite in a temp dir, or `signoff_bench_mail` on
the local PostgreSQL, dropped and recreated), empties a Redis database and starts an aiosmtpd
sink on loopback. In the same run it times:

- raw smtplib: the same M emails, built beforehand, over one SMTP connection (the physical
  limit here) and with a connection per message;
- the real path: M pending outbox rows written in one commit and handed on with
  `outbox.send_after_commit`, as the app does; then the operator's worker (`make worker`:
  `rq worker signoff --with-scheduler --worker-class jobs.worker.AppWorker`, here with
  `--burst`) as a subprocess, timed until it exits (with its start-up) and at the sink
  (first to last message accepted);
- before: the old path, a job per message (`jobs.outbox.deliver_message`, one SMTP
  connection each), on a share of M (`--before`);
- the worker's start-up alone: the same command over one no-op job (`bench.noop.noop`).
"""
from __future__ import annotations

import argparse
import os
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from flask import Flask
from flask_migrate import upgrade
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry
from sqlalchemy import func, insert, select

from bench.names import bench_database
from portal import create_app
from portal.extensions import db
from portal.models import OutboxMessage, OutboxStatus, utcnow
from portal.notifications import outbox, smtp
from portal.notifications.queue import QUEUE_NAME

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-" * 8
PG_NAME = bench_database("signoff_bench_mail")
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_NAME}"
WORKER = ["--with-scheduler", "--worker-class", "jobs.worker.AppWorker"]  # as `make worker`
BODY_TEXT = ("Hello,\n\nA friendly reminder: the deliverable is still waiting for your "
             "decision.\n\n") * 12
BODY_HTML = "<p>" + BODY_TEXT.replace("\n\n", "</p><p>") + "</p>"


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that counts what it accepts, and when."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.received: list[float] = []
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                with sink.lock:
                    sink.received.extend([time.perf_counter()] * len(envelope.rcpt_tos))
                return "250 OK"

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def span(self, since: int) -> float:
        """Seconds from the first to the last message accepted after the first `since`."""
        with self.lock:
            times = self.received[since:]
        return times[-1] - times[0] if len(times) > 1 else float("nan")


def recreate_postgres() -> str:
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres "
                         "connect_timeout=5", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_NAME}")
    return PG_URL


def run_worker(env: dict[str, str], redis_url: str, log: Path, timeout: float) -> float:
    """The operator's worker, in burst mode, as a subprocess; seconds until it exits."""
    args = [sys.executable, "-m", "rq.cli", "worker", QUEUE_NAME, "--burst", *WORKER,
            "--url", redis_url]
    with log.open("ab") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise SystemExit(f"worker did not finish in {timeout:.0f} s; see {log}") from None
        seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"worker exited with {code}; see {log}")
    return seconds


def write_rows(app: Flask, messages: int, tag: str, handed_on: bool = True) -> list[int]:
    """Write M pending outbox rows in one commit, handed on as the app does."""
    now = utcnow()
    with app.app_context():
        db.session.execute(insert(OutboxMessage), [{
            "idempotency_key": f"bench:{tag}:{i}", "to_addr": f"contact{i}@client.example",
            "to_name": f"Contact {i}", "reply_to": "owner@agency.example",
            "subject": f"Reminder: Deliverable {i} (version 1) is waiting for your decision",
            "body_text": BODY_TEXT, "body_html": BODY_HTML, "next_attempt_at": now,
        } for i in range(messages)])
        ids = list(db.session.scalars(select(OutboxMessage.id).where(
            OutboxMessage.idempotency_key.like(f"bench:{tag}:%")).order_by(OutboxMessage.id)))
        if handed_on:
            for message_id in ids:
                outbox.send_after_commit(message_id)
        db.session.commit()  # the after-commit hook wakes the send job, as in the app
        db.session.remove()
    return ids


def build_emails(app: Flask, messages: int) -> list[Any]:
    """M emails as the real path builds them (smtp.build_email), for the raw baseline."""
    with app.app_context():
        return [smtp.build_email(OutboxMessage(
            id=i, to_addr=f"contact{i}@client.example", to_name=f"Contact {i}",
            reply_to="owner@agency.example", subject=f"Reminder: Deliverable {i}",
            body_text=BODY_TEXT, body_html=BODY_HTML),
            "Agency <review@agency.bench>") for i in range(messages)]


def raw_smtplib(emails: list[Any], port: int, one_connection: bool) -> float:
    started = time.perf_counter()
    if one_connection:
        with smtplib.SMTP("127.0.0.1", port, timeout=15) as conn:
            for email in emails:
                conn.send_message(email)
    else:
        for email in emails:
            with smtplib.SMTP("127.0.0.1", port, timeout=15) as conn:
                conn.send_message(email)
    return time.perf_counter() - started


def check_mail(app: Flask, ids: list[int], sink: SmtpSink, before: int) -> None:
    with app.app_context():
        statuses = dict(db.session.execute(
            select(OutboxMessage.status, func.count()).where(OutboxMessage.id.in_(ids))
            .group_by(OutboxMessage.status)).all())
        db.session.remove()
    got = sink.count() - before
    if got != len(ids) or statuses != {OutboxStatus.SENT: len(ids)}:
        raise SystemExit(f"sink received {got} of {len(ids)}; row statuses {statuses}")


def check_queue(queue: Queue) -> None:
    failed = FailedJobRegistry(queue=queue).count
    if queue.count or failed:
        raise SystemExit(f"{queue.count} jobs left in the queue, {failed} failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--before", type=int, default=100,
                        help="messages through the old job-per-message path (0: skip)")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--timeout", type=float, default=600, help="per worker run (s)")
    args = parser.parse_args()
    signal.alarm(int(args.timeout * 5))  # bound the whole run
    tmp = Path(tempfile.mkdtemp(prefix="signoff-bench-mail-"))
    url = recreate_postgres() if args.db == "postgres" else f"sqlite:///{tmp / 'bench.sqlite3'}"

    redis = Redis.from_url(args.redis, socket_connect_timeout=2, socket_timeout=10)
    redis.flushdb()
    queue = Queue(QUEUE_NAME, connection=redis)
    sink = SmtpSink()
    settings = {"DATABASE_URL": url, "SECRET_KEY": SECRET, "REDIS_URL": args.redis,
                "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(sink.port),
                "MAIL_DEFAULT_SENDER": "review@agency.bench",
                "INSTANCE_PATH": str(tmp / "instance"), "FILE_STORE": str(tmp / "files"),
                "PUBLIC_BASE_URL": "http://portal.bench"}
    os.environ.update(settings)  # this process and the workers read the same settings
    os.environ.pop("FLASK_DEBUG", None)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    app = create_app()
    with app.app_context():
        upgrade()
        db.engine.dispose()
    log = tmp / "worker.log"
    m = args.messages
    print(f"database {args.db} ({url}), redis {args.redis}, SMTP sink 127.0.0.1:{sink.port}, "
          f"worker log {log}; load {os.getloadavg()[0]:.2f}", flush=True)

    rows: list[tuple[str, int, float, str]] = []  # name, messages, seconds, note
    try:
        emails = build_emails(app, m)
        one = raw_smtplib(emails, sink.port, one_connection=True)
        rows.append(("raw smtplib, one connection (baseline)", m, one, ""))
        each = raw_smtplib(emails, sink.port, one_connection=False)
        rows.append(("raw smtplib, a connection per message", m, each, ""))

        queue.enqueue("bench.noop.noop", 0, result_ttl=0)
        startup = run_worker(env, args.redis, log, args.timeout)
        check_queue(queue)

        before = sink.count()
        ids = write_rows(app, m, "batches")
        jobs = queue.count
        wall = run_worker(env, args.redis, log, args.timeout)
        check_queue(queue)
        check_mail(app, ids, sink, before)
        rows.append(("worker, batches (at the sink)", m, sink.span(before),
                     f"{jobs} job woken for {m} rows"))
        rows.append(("worker, batches (run less start-up)", m, wall - startup,
                     f"run {wall:.2f} s, start-up {startup:.2f} s"))

        if args.before:
            before = sink.count()
            ids = write_rows(app, args.before, "before", handed_on=False)
            for message_id in ids:
                queue.enqueue(outbox.DELIVER_JOB, message_id, result_ttl=0,
                              job_id=f"outbox-{message_id}")
            wall = run_worker(env, args.redis, log, args.timeout)
            check_queue(queue)
            check_mail(app, ids, sink, before)
            rows.append(("before: a job per message (run less start-up)", args.before,
                         wall - startup, f"run {wall:.2f} s"))
    finally:
        sink.controller.stop()
        redis.flushdb()

    header = ("path", "messages", "seconds", "msg/s", "ratio to raw, one connection", "note")
    table = [header] + [
        (name, str(n), f"{sec:.2f}", f"{n / sec:.1f}", f"{(n / sec) / (m / one):.3f}", note)
        for name, n, sec, note in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print()
    for n, row in enumerate(table):
        print("| " + " | ".join(c.ljust(w) if i in (0, 5) else c.rjust(w)
                                for i, (c, w) in enumerate(zip(row, widths, strict=True))) + " |")
        if n == 0:
            print("|" + "|".join(("-" * (w + 2)) if i in (0, 5) else "-" * (w + 1) + ":"
                                 for i, w in enumerate(widths)) + "|")
    print(f"\n({args.db}; load after the run {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
