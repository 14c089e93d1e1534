"""Reminder sweep time over N open approvers on PostgreSQL.

    .venv/bin/python bench/sweep.py --approvers 100000 [--due-fraction 0.01] [--reuse]

Recreates the database `signoff_bench` with the real migrations, bulk-loads one client with
a few thousand contacts, N invited approvers (3 per open request; a fraction due now) and
their history (a sent invite per approver, an audit event per request), then times
`portal.workflow.reminders.sweep(now)` against the baseline of the same run: a bare
`INSERT … SELECT` of one reminder row per due approver (rolled back), and a second sweep
with nothing due. `--reuse` keeps the data of the last run with the same --approvers and
only puts the due approvers back as they were (far quicker than a rebuild at 1M).
The sweep's emails are not handed to a queue (no sending competes with it).
"""
from __future__ import annotations

import argparse
import itertools
import os
import re
import signal
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade

from bench.names import bench_database
from portal import audit, create_app
from portal.extensions import db
from portal.models import (
    Approver,
    AuditEvent,
    OutboxMessage,
    Reminder,
)
from portal.notifications import queue
from portal.workflow import reminders

PG = "host=127.0.0.1 port=5432 user=postgres connect_timeout=5"
DB_NAME = bench_database("signoff_bench")
URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"
INDEX = "ix_approvers_due"
CONFIG = {"SQLALCHEMY_DATABASE_URI": URL, "SECRET_KEY": "bench-" * 8,
          "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "connect_args": {
              "connect_timeout": 5, "options": "-c statement_timeout=600s"}}}

LOAD_SQL = """
INSERT INTO users (id, email, name, password_hash, role, active, session_token, created_at)
SELECT g, 'staff' || g || '@agency.example', 'Staff ' || g, 'x',
       CASE WHEN g = 1 THEN 'admin' ELSE 'staff' END, true, md5('s' || g), %(now)s
FROM generate_series(1, %(users)s) g;
INSERT INTO clients (id, name, timezone, created_at)
VALUES (1, 'Bench Client GmbH', 'Europe/Berlin', %(now)s);
INSERT INTO contacts (id, client_id, name, email, created_at)
SELECT g, 1, 'Contact ' || g, 'contact' || g || '@client.example', %(now)s
FROM generate_series(1, %(contacts)s) g;
INSERT INTO projects (id, client_id, name, owner_id, created_at)
SELECT g, 1, 'Project ' || g, 1 + mod(g, %(users)s), %(now)s
FROM generate_series(1, %(projects)s) g;
INSERT INTO deliverables (id, project_id, title, description, state, due_date, owner_id,
                          reviewer_id, created_at, last_activity_at)
SELECT g, 1 + mod(g, %(projects)s), 'Deliverable ' || g, 'Bench deliverable', 'delivered',
       %(due)s, 1 + mod(g, %(users)s), 1 + mod(g + 1, %(users)s), %(sent)s, %(sent)s
FROM generate_series(1, %(requests)s) g;
INSERT INTO versions (id, deliverable_id, number, file_name, media_type, size, sha256,
                      storage_key, what_changed, uploaded_by_id, uploaded_at)
SELECT g, g, 1, 'deliverable-' || g || '.pdf', 'application/pdf', 123456, md5('v' || g)
       || md5('w' || g), 'bench/' || g, 'First cut', 1 + mod(g, %(users)s), %(sent)s
FROM generate_series(1, %(requests)s) g;
INSERT INTO review_requests (id, version_id, policy, due_date, status, link_ttl_days,
                             sent_by_id, sent_at, reminder_first_after_days,
                             reminder_every_days, reminder_max)
SELECT g, g, 'parallel', %(due)s, 'open', 14, 1 + mod(g, %(users)s), %(sent)s, 2, 2, 5
FROM generate_series(1, %(requests)s) g;
INSERT INTO approvers (id, request_id, contact_id, position, public_id, link_generation,
                       status, invited_at, link_expires_at, next_reminder_at, reminders_sent)
SELECT g, (g - 1) / %(per_request)s + 1, 1 + mod(g - 1, %(contacts)s),
       1 + mod(g - 1, %(per_request)s), substr(md5('a' || g), 1, 22), 1, 'invited', %(sent)s,
       %(now)s + interval '10 days',
       CASE WHEN floor(g * %(fraction)s) > floor((g - 1) * %(fraction)s)
            THEN %(now)s - make_interval(mins => mod(g, 600))
            ELSE %(now)s + make_interval(mins => 60 + mod(g * 7, 7 * 24 * 60)) END,
       mod(g, 3)
FROM generate_series(1, %(approvers)s) g;
INSERT INTO audit_events (id, seq, at, actor, actor_label, verb, subject_type, subject_id,
                          deliverable_id, detail, prev_hash, hash)
SELECT g, g, %(sent)s, 'user:1', 'Staff 1', 'request.delivered', 'review_requests', g, g, '{}',
       md5('h' || g - 1) || md5('i' || g - 1), md5('h' || g) || md5('i' || g)
FROM generate_series(1, %(requests)s) g;
INSERT INTO outbox_messages (id, kind, idempotency_key, to_addr, to_name, reply_to, subject,
                             body_text, body_html, deliverable_id, status, attempts,
                             next_attempt_at, last_error, transport, created_at, sent_at)
SELECT g, 'email', 'invite:' || g || ':1', 'contact' || c || '@client.example', 'Contact',
       'staff1@agency.example', 'Please review: Deliverable ' || r || ' (version 1)',
       repeat('Please review. ', 20), repeat('<p>Please review.</p>', 20), r, 'sent', 1,
       %(sent)s, '', 'smtp', %(sent)s, %(sent)s
FROM generate_series(1, %(approvers)s) g,
     LATERAL (SELECT (g - 1) / %(per_request)s + 1, 1 + mod(g - 1, %(contacts)s)) d(r, c);
"""
# Undo a previous run: its reminders, their emails and events, and the approvers' schedule.
RESET_SQL = """
DELETE FROM reminders;
DELETE FROM outbox_messages WHERE idempotency_key LIKE 'reminder:%%';
DELETE FROM audit_events WHERE seq > %(requests)s;
UPDATE approvers SET link_expires_at = %(now)s + interval '10 days', reminders_sent = mod(id, 3),
  next_reminder_at = CASE WHEN floor(id * %(fraction)s) > floor((id - 1) * %(fraction)s)
       THEN %(now)s - make_interval(mins => mod(id, 600))
       ELSE %(now)s + make_interval(mins => 60 + mod(id * 7, 7 * 24 * 60)) END
"""
BASELINE_SQL = """
INSERT INTO reminders (approver_id, number, manual, sent_at)
SELECT id, reminders_sent + 1, false, %(now)s FROM approvers
WHERE status = 'invited' AND next_reminder_at <= %(now)s
"""
TABLES = ["users", "clients", "contacts", "projects", "deliverables", "versions",
          "review_requests", "approvers", "audit_events", "outbox_messages"]


def _params(approvers: int, fraction: float, contacts: int, now: datetime) -> dict[str, Any]:
    return {"now": now, "sent": now - timedelta(days=3), "due": now.date() + timedelta(days=30),
            "users": 20, "contacts": contacts, "projects": 200, "approvers": approvers,
            "fraction": fraction, "per_request": 3, "requests": -(-approvers // 3)}


def _run_sql(sql: str, params: dict[str, Any]) -> None:
    with psycopg.connect(PG + f" dbname={DB_NAME}", autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL statement_timeout = '600s'")
            for statement in filter(str.strip, sql.split(";\n")):
                conn.execute(statement, params)  # type: ignore[arg-type]
            for table in TABLES:
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                             f"(SELECT max(id) FROM {table}))")
        conn.execute("VACUUM ANALYZE")


def build(approvers: int, fraction: float, contacts: int, now: datetime) -> None:
    """Drop and create the database, migrate it, then load it with plain SQL."""
    with psycopg.connect(PG + " dbname=postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    with create_app(CONFIG).app_context():
        upgrade()
        db.engine.dispose()
    _run_sql(LOAD_SQL, _params(approvers, fraction, contacts, now))


def reuse(approvers: int, fraction: float, contacts: int, now: datetime) -> None:
    """Put the last run's database back as `build` leaves it, with `now` moved on."""
    with psycopg.connect(PG + f" dbname={DB_NAME}") as conn:
        have = conn.execute("SELECT count(*) FROM approvers").fetchone()
    if not have or have[0] != approvers:
        sys.exit(f"--reuse: {DB_NAME} holds {have[0] if have else 0} approvers, not {approvers}")
    with create_app(CONFIG).app_context():
        upgrade()  # the schema at head (an index migration since the last run applies)
    _run_sql(RESET_SQL, _params(approvers, fraction, contacts, now))


def baseline(now: datetime) -> float:
    """The physical floor: one INSERT … SELECT writing a reminder row per due approver,
    rolled back; best of three."""
    timings = []
    with psycopg.connect(PG + f" dbname={DB_NAME}") as conn:
        for _ in range(3):
            started = time.perf_counter()
            conn.execute(BASELINE_SQL, {"now": now})
            timings.append(time.perf_counter() - started)
            conn.rollback()
    return min(timings)


def hold_jobs() -> None:
    """The app's commits hand no job to the embedded runner: the bench measures the sweep,
    not the sending it queues (the outbox rows stay pending)."""
    if event.contains(db.session, "after_commit", queue._dispatch):
        event.remove(db.session, "after_commit", queue._dispatch)


class Explain(Executable, ClauseElement):
    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (ANALYZE, BUFFERS) " + compiler.process(element.statement, **kw)


def due_query(now: datetime) -> Any:
    """The sweep's own due query, first batch."""
    return reminders.due_query(now)


class QueryLog:
    """Counts and times every statement the app sends while it is attached."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self.hooks = {"before_cursor_execute": self._before, "after_cursor_execute": self._after}

    def _before(self, conn: Any, *args: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        stat = self.stats[re.sub(r"\s+", " ", statement)[:90]]
        stat[0] += 1
        stat[1] += time.perf_counter() - conn.info.pop("bench_t0")

    def __enter__(self) -> QueryLog:
        for name, hook in self.hooks.items():
            event.listen(self.engine, name, hook)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, hook in self.hooks.items():
            event.remove(self.engine, name, hook)

    def summary(self, label: str, per: int, top: int) -> str:
        calls, total = (sum(v[i] for v in self.stats.values()) for i in (0, 1))
        rows = sorted(self.stats.items(), key=lambda kv: kv[1][1], reverse=True)[:top]
        each = f" ({calls / per:.1f} per reminder)" if per else ""
        return "\n".join([f"{label}: {calls:.0f} statements{each}, {total:.2f} s in the driver;"
                          " slowest in total:"] +
                         [f"  {t * 1000:9.1f} ms {n:7.0f}x  {k}" for k, (n, t) in rows])


def timed_sweep(now: datetime) -> tuple[float, reminders.SweepReport, QueryLog]:
    with QueryLog(db.engine) as log:
        started = time.perf_counter()
        report = reminders.sweep(now)
        seconds = time.perf_counter() - started
    db.session.info.pop(queue.AFTER_COMMIT_KEY, None)  # the bench hands nothing to the queue
    db.session.expunge_all()
    return seconds, report, log


def check_appended_chain(after_seq: int) -> int:
    """The events the sweep appended hold as a chain (the loaded history's hashes are
    synthetic, so `flask audit verify` of the whole trail is no use here)."""
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.seq >= after_seq)
                                .order_by(AuditEvent.seq)).all()
    for before, row in itertools.pairwise(events):
        if row.prev_hash != before.hash or audit._digest(row) != row.hash \
                or row.seq != before.seq + 1:
            sys.exit(f"CHAIN BROKEN at seq {row.seq}")
    return len(events) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--approvers", type=int, default=100_000)
    parser.add_argument("--due-fraction", type=float, default=0.01)
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--reuse", action="store_true", help="keep the last run's data")
    parser.add_argument("--profile", action="store_true", help="pyinstrument the first sweep")
    parser.add_argument("--timeout", type=int, default=1800, help="give up after (s)")
    args = parser.parse_args()
    signal.alarm(args.timeout)  # bound the whole run
    now = datetime.now(UTC).replace(microsecond=0)
    os.environ["INSTANCE_PATH"] = tempfile.mkdtemp(prefix="signoff-bench-")

    t0 = time.perf_counter()
    (reuse if args.reuse else build)(args.approvers, args.due_fraction, args.contacts, now)
    print(f"{'reset' if args.reuse else 'built'} {DB_NAME}: {args.approvers} approvers, "
          f"{args.contacts} contacts, in {time.perf_counter() - t0:.1f} s")
    floor_s = baseline(now)
    with create_app(CONFIG).app_context():
        hold_jobs()
        due = db.session.scalar(select(func.count()).select_from(Approver)
                                .where(Approver.next_reminder_at <= now)) or 0
        head = db.session.scalar(select(func.max(AuditEvent.seq))) or 0
        plan = [r[0] for r in db.session.connection().execute(Explain(due_query(now)))]
        db.session.rollback()
        load = os.getloadavg()[0]
        if args.profile:
            from pyinstrument import Profiler
            with Profiler() as profiler:
                seconds, report, log1 = timed_sweep(now)
            print(profiler.output_text(unicode=True, color=False, show_all=False))
        else:
            seconds, report, log1 = timed_sweep(now)
        second_s, report2, log2 = timed_sweep(now)
        # The second sweep's index scan steps over (and marks dead) the entries the first
        # sweep's updates left behind; a third shows the steady nothing-due cost.
        third_s, report3, _log3 = timed_sweep(now)
        sent = db.session.scalar(select(func.count()).select_from(Reminder))
        outbox = db.session.scalar(select(func.count()).select_from(OutboxMessage)
                                   .where(OutboxMessage.idempotency_key.like("reminder:%")))
        chained = check_appended_chain(head)
        db.session.remove()
        db.engine.dispose()

    print(f"\nEXPLAIN ANALYZE of the sweep's due query (first batch), index {INDEX} "
          f"used: {'yes' if any(INDEX in line for line in plan) else 'NO'}")
    print("\n".join("  " + line for line in plan))
    print("\n" + log1.summary("sweep 1", report.reminders, 12))
    print(log2.summary("sweep 2", report2.reminders, 3))
    print(f"\nsweep 1: {report}\nsweep 2: {report2}\nnew rows: {sent} reminders, {outbox} "
          f"reminder emails in the outbox (not handed to a queue), {chained} audit events "
          f"chained\nload average (1 min) when the sweep started: {load:.2f}")
    header = ("N", "due", "INSERT…SELECT ms", "sweep s", "ratio", "reminders/s",
              "nothing due ms (2nd, 3rd)")
    cells = (f"{args.approvers}", f"{due}", f"{floor_s * 1000:.1f}", f"{seconds:.2f}",
             f"{seconds / floor_s:.0f}x", f"{report.reminders / seconds:.0f}",
             f"{second_s * 1000:.1f}, {third_s * 1000:.1f}")
    widths = [max(len(h), len(c)) for h, c in zip(header, cells, strict=True)]
    print("\n| " + " | ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    print("| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |")
    if not report.reminders == due == sent == outbox == chained or report2.reminders \
            or report3.reminders:
        sys.exit(f"MISMATCH: due {due}, reminders {report.reminders}, rows {sent}/{outbox}, "
                 f"events {chained}")


if __name__ == "__main__":
    main()
