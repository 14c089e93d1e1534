"""Emails per second per worker to the local SMTP sink, against a no-op job.

    .venv/bin/python bench/mail.py --messages 500 [--db sqlite|postgres]

Builds a fresh database with the real migrations (SQLite in a temp dir, or `signoff_bench` on
the local PostgreSQL, dropped and recreated), empties a Redis database, starts an aiosmtpd sink
on loopback, writes M pending outbox rows and hands each to the queue with
`portal.notifications.outbox.send_after_commit` and a commit. Then one real burst worker
(`python -m rq.cli worker signoff --burst --worker-class ...`) runs them as a subprocess and we
time it until it exits. The baseline is the same worker over M jobs of `bench.noop.noop`.
Both run with AppWorker (forks a work horse per job) and SimpleWorker (no fork).
"""
from __future__ import annotations

import argparse
import os
import signal
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

from portal import create_app
from portal.extensions import db
from portal.models import OutboxMessage, OutboxStatus, utcnow
from portal.notifications import outbox
from portal.notifications.queue import QUEUE_NAME

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-" * 8
PG_URL = "postgresql://postgres@127.0.0.1:5432/signoff_bench"
WORKERS = {"AppWorker": "jobs.worker.AppWorker", "SimpleWorker": "rq.worker.SimpleWorker"}
BODY_TEXT = ("Hello,\n\nA friendly reminder: the deliverable is still waiting for your "
             "decision.\n\n") * 12
BODY_HTML = "<p>" + BODY_TEXT.replace("\n\n", "</p><p>") + "</p>"


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that counts what it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.received: list[str] = []
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                with sink.lock:
                    sink.received.extend(envelope.rcpt_tos)
                return "250 OK"

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def count(self) -> int:
        with self.lock:
            return len(self.received)


def recreate_postgres() -> str:
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres "
                         "connect_timeout=5", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS signoff_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE signoff_bench")
    return PG_URL


def run_worker(worker_class: str, env: dict[str, str], redis_url: str, log: Path,
               timeout: float) -> float:
    """One real burst worker as a subprocess; seconds until it exits."""
    args = [sys.executable, "-m", "rq.cli", "worker", QUEUE_NAME, "--burst",
            "--worker-class", worker_class, "--url", redis_url]
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


def enqueue_mail(app: Flask, messages: int, tag: str) -> list[int]:
    """Write M pending outbox rows and hand each one to the queue, as the app does."""
    now = utcnow()
    with app.app_context():
        db.session.execute(insert(OutboxMessage), [{
            "idempotency_key": f"bench:{tag}:{i}", "to_addr": f"contact{i}@client.example",
            "to_name": f"Contact {i}", "reply_to": "owner@agency.example",
            "subject": f"Reminder: Deliverable {i} (version 1) is waiting for your decision",
            "body_text": BODY_TEXT, "body_html": BODY_HTML, "next_attempt_at": now,
        } for i in range(messages)])
        db.session.commit()
        ids = list(db.session.scalars(select(OutboxMessage.id).where(
            OutboxMessage.idempotency_key.like(f"bench:{tag}:%")).order_by(OutboxMessage.id)))
        for message_id in ids:
            outbox.send_after_commit(message_id)
        queued = len(ids)
        db.session.commit()  # the after-commit hook queues them, as in the app
        db.session.remove()
    if queued != messages:
        raise SystemExit(f"only {queued} of {messages} mail jobs were queued")
    return ids


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
    parser.add_argument("--messages", type=int, default=500)
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
    print(f"database {args.db} ({url}), redis {args.redis}, SMTP sink 127.0.0.1:{sink.port}, "
          f"worker log {log}", flush=True)

    rows: list[tuple[str, float, float]] = []
    try:
        for name, worker_class in WORKERS.items():
            before = sink.count()
            started = time.perf_counter()
            ids = enqueue_mail(app, args.messages, name)
            enqueue_s = time.perf_counter() - started
            mail_s = run_worker(worker_class, env, args.redis, log, args.timeout)
            check_queue(queue)
            check_mail(app, ids, sink, before)

            for i in range(args.messages):
                queue.enqueue("bench.noop.noop", i, result_ttl=0)
            noop_s = run_worker(worker_class, env, args.redis, log, args.timeout)
            check_queue(queue)
            rows.append((name, mail_s, noop_s))
            print(f"{name}: mail {mail_s:.2f} s (enqueue {enqueue_s:.2f} s), "
                  f"no-op {noop_s:.2f} s; sink has {sink.count()} messages", flush=True)
    finally:
        sink.controller.stop()
        redis.flushdb()

    m = args.messages
    header = ("worker", "jobs", "mail s", "mail/s", "no-op s", "no-op/s", "ratio",
              "extra ms/email")
    table = [header] + [
        (name, str(m), f"{mail_s:.2f}", f"{m / mail_s:.1f}", f"{noop_s:.2f}",
         f"{m / noop_s:.1f}", f"{mail_s / noop_s:.2f}", f"{(mail_s - noop_s) / m * 1000:.1f}")
        for name, mail_s, noop_s in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print()
    for n, row in enumerate(table):
        print("| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                for i, (c, w) in enumerate(zip(row, widths, strict=True))) + " |")
        if n == 0:
            print("|" + "|".join(("-" * (w + 2)) if i == 0 else "-" * (w + 1) + ":"
                                 for i, w in enumerate(widths)) + "|")
    print(f"\n({args.db}; ratio = mail seconds / no-op seconds; each worker run includes its "
          "start-up)")


if __name__ == "__main__":
    main()
