"""Dashboard list and filter times at N deliverables on PostgreSQL.

    .venv/bin/python bench/dashboard.py [--deliverables 1000000] [--reuse] [--requests 30]
        [--dashboard-only] [--profile] [--repeat 5] [--with-suggested]

Recreates `signoff_bench_dashboard` through the migrations, bulk-loads it with SQL (see LOAD_SQL),
times board.attention and board.deliverable_page directly and through signed-in HTTP requests
against a bare 50-row page and a bare count, and EXPLAINs the slow statements. The dashboard
(GET / mine and GET /?scope=everyone) is timed over --requests signed-in requests each (p50,
p90, statements), alternating with the bare page; --reuse keeps a database already loaded.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade

from bench.names import bench_database
from portal import create_app
from portal.extensions import db
from portal.models import DeliverableState, User
from portal.models.work import BOARD_INDEXES
from portal.people.accounts import hash_password
from portal.reports import board

PG = "host=127.0.0.1 port=5432 user=postgres connect_timeout=5"
DB_NAME = bench_database("signoff_bench_dashboard")
URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"
CONFIG = {"SQLALCHEMY_DATABASE_URI": URL, "SECRET_KEY": "bench-" * 8, "TESTING": True,
          "WTF_CSRF_ENABLED": False,
          "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "connect_args": {
              "connect_timeout": 5, "options": "-c statement_timeout=120s"}}}
PASSWORD = "bench-password-1"
USERS, CLIENTS, PROJECTS = 50, 2000, 10_000
CLIENT, PROJECT, OWNER = 1234, 4321, 7  # the filtered ones (project 4321 is client 321's)
TABLES = ["users", "clients", "contacts", "projects", "deliverables", "versions",
          "review_requests", "approvers", "comments", "comment_seen_marks"]
# 50 staff, 2,000 clients with 3 contacts, 10,000 projects; N deliverables: 50 % approved, 5 %
# with conditions, 22 % delivered, 5 % changes requested, 6 % each draft, in review, ready; one
# version (a tenth two, the first rejected); a request per sent one, open while delivered (4 % of
# those past due, 1 % escalated); 1-2 approvers each. Client comments: 0-4 (2 on average) on an
# open or sent-back request, one on 30 % of the others, a staff reply on every other thread and
# an internal note on a seventh; the owner has seen none of a third of the threads, the first
# comment of a third and all of the rest, and the reviewer all of every other one (so "new
# client comments" has rows in every section). FK triggers and plain indexes off meanwhile.
LOAD_SQL = f"""
INSERT INTO users (id, email, name, password_hash, role, active, session_token, created_at)
SELECT g, 'staff' || g || '@agency.example', 'Staff ' || lpad(g::text, 2, '0'), %(hash)s,
  CASE g WHEN 1 THEN 'admin' ELSE 'staff' END, true, md5('s' || g), %(start)s
FROM generate_series(1, {USERS}) g;
INSERT INTO clients (id, name, timezone, created_at) SELECT g, 'Client ' || lpad(g::text, 4, '0'),
  'Europe/Berlin', %(start)s FROM generate_series(1, {CLIENTS}) g;
INSERT INTO contacts (id, client_id, name, email, created_at) SELECT g, 1 + (g - 1) / 3,
  'Contact ' || g, 'c' || g || '@client.example', %(start)s
FROM generate_series(1, {3 * CLIENTS}) g;
INSERT INTO projects (id, client_id, name, owner_id, created_at)
SELECT g, 1 + mod(g - 1, {CLIENTS}), 'Project ' || lpad(g::text, 5, '0'), 1 + mod(g, {USERS}),
  %(start)s FROM generate_series(1, {PROJECTS}) g;
INSERT INTO deliverables (id, project_id, title, description, state, due_date, owner_id,
                          reviewer_id, created_at, last_activity_at)
SELECT g, 1 + mod(h / 100, {PROJECTS}), 'Deliverable ' || g, '',
  CASE WHEN b < 50 THEN 'approved' WHEN b < 55 THEN 'approved_with_conditions'
       WHEN b < 77 THEN 'delivered' WHEN b < 82 THEN 'changes_requested'
       WHEN b < 88 THEN 'draft' WHEN b < 94 THEN 'in_review' ELSE 'ready' END,
  (c + interval '30 days')::date, 1 + mod(h / 1000000, {USERS}),
  CASE WHEN mod(g, 5) > 0 THEN 1 + mod(g * 7, {USERS}) END,  -- a fifth unassigned
  c, greatest(c, least(c + make_interval(hours => mod(h / 7, 480)::int),
                     %(now)s - make_interval(secs => mod(h, 7200)::int)))
FROM generate_series(1, %(n)s) g, LATERAL (SELECT hashint4(g)::bigint + 2147483648) x(h),
  LATERAL (SELECT mod(h, 100), %(now)s - make_interval(  -- created over three years
    secs => (%(n)s - g)::float8 * 94608000 / %(n)s)) y(b, c);
INSERT INTO versions (id, deliverable_id, number, file_name, media_type, size, sha256,
                      storage_key, what_changed, uploaded_by_id, uploaded_at)
SELECT CASE k WHEN 1 THEN d.id ELSE %(n)s + d.id / 10 END, d.id, k, 'd' || d.id || '.pdf',
  'application/pdf', 123456, md5('v' || d.id || k) || md5('w' || d.id || k),
  'bench/' || d.id || '/' || k, 'Cut ' || k, d.owner_id, d.created_at + make_interval(hours => k)
FROM deliverables d, generate_series(1, CASE WHEN mod(d.id, 10) = 0 THEN 2 ELSE 1 END) k;
INSERT INTO review_requests (id, version_id, policy, due_date, status, link_ttl_days,
                             sent_by_id, sent_at, escalated_at, closed_at)
SELECT CASE WHEN k = 1 THEN d.id ELSE %(n)s + d.id / 10 END,  -- k = 2: rejected first version
  CASE WHEN k = 2 OR mod(d.id, 10) > 0 THEN d.id ELSE %(n)s + d.id / 10 END,
  CASE WHEN mod(d.id, 3) = 0 AND k = 1 THEN 'sequential' ELSE 'parallel' END,
  CASE WHEN k = 2 OR d.state <> 'delivered' THEN (x.sent + interval '14 days')::date
       WHEN x.o < 4 THEN %(today)s - (1 + mod(d.id, 20)) ELSE %(today)s + (1 + mod(d.id, 30)) END,
  CASE WHEN k = 2 THEN 'changes_requested' WHEN d.state = 'delivered' THEN 'open' ELSE d.state END,
  14, d.owner_id, x.sent,
  CASE WHEN k = 1 AND d.state = 'delivered' AND x.o = 4 THEN %(now)s - interval '1 day' END,
  CASE WHEN k = 2 OR d.state <> 'delivered' THEN x.sent + interval '1 day' END
FROM deliverables d, generate_series(1, CASE WHEN mod(d.id, 10) = 0 THEN 2 ELSE 1 END) k,
  LATERAL (SELECT mod(hashint4(-d.id)::bigint + 2147483648, 100), CASE k WHEN 1
    THEN d.last_activity_at - interval '2 days' ELSE d.created_at + interval '1 day' END) x(o, sent)
WHERE d.state IN ('delivered', 'approved', 'approved_with_conditions', 'changes_requested');
INSERT INTO approvers (id, request_id, contact_id, position, public_id, link_generation,
                       status, invited_at, link_expires_at, next_reminder_at, reminders_sent)
SELECT 2 * r.id + k - 2, r.id, 3 * (p.client_id - 1) + k, k, substr(md5(r.id || '-' || k), 1, 22),
  1, CASE WHEN r.status = 'open' AND r.policy = 'sequential' AND k = 2 THEN 'queued'
          WHEN r.status = 'open' THEN 'invited'
          WHEN r.status = 'changes_requested' AND k = 1 THEN 'rejected'
          WHEN r.status = 'approved_with_conditions' AND k = 1 THEN 'approved_with_conditions'
          ELSE 'approved' END, r.sent_at, r.sent_at + interval '14 days',
  CASE WHEN r.status = 'open' THEN %(now)s + make_interval(hours => 1 + mod(r.id, 48)) END, 0
FROM review_requests r JOIN versions v ON v.id = r.version_id
  JOIN deliverables d ON d.id = v.deliverable_id JOIN projects p ON p.id = d.project_id,
  generate_series(1, 1 + mod(r.id, 2)) k;
INSERT INTO comments (id, request_id, author_contact_id, author_user_id, body, internal,
                      created_at, version_id, resolution_status, resolution_note)
SELECT row_number() OVER (ORDER BY r.id, j), r.id,
  CASE WHEN j <= x.n THEN 3 * (p.client_id - 1) + 1 END,
  CASE WHEN j > x.n THEN r.sent_by_id END, 'Comment ' || j || ' on request ' || r.id,
  j > x.n + 1, least(r.sent_at + make_interval(hours => j::int), %(now)s), r.version_id, 'open', ''
FROM review_requests r JOIN versions v ON v.id = r.version_id
  JOIN deliverables d ON d.id = v.deliverable_id JOIN projects p ON p.id = d.project_id,
  LATERAL (SELECT CASE WHEN r.status IN ('open', 'changes_requested')
    THEN mod(hashint4(r.id)::bigint + 2147483648, 5)
    ELSE mod(hashint4(r.id)::bigint + 2147483648, 10) / 7 END) x(n),
  generate_series(1, x.n + CASE WHEN x.n = 0 THEN 0 WHEN mod(r.id, 7) = 0 THEN 2
                                WHEN mod(r.id, 2) = 0 THEN 1 ELSE 0 END) j;
INSERT INTO comment_seen_marks (id, user_id, deliverable_id, comment_id, seen_at)
SELECT row_number() OVER (ORDER BY t.deliverable_id, t.user_id), t.* FROM (
  SELECT x.owner_id AS user_id, x.id AS deliverable_id,
    CASE mod(x.id, 3) WHEN 1 THEN x.hi ELSE x.lo END AS comment_id, %(now)s AS seen_at
  FROM threads x WHERE mod(x.id, 3) > 0
  UNION ALL
  SELECT x.reviewer_id, x.id, x.hi, %(now)s FROM threads x
  WHERE x.reviewer_id <> x.owner_id AND mod(x.id, 2) = 0) t;
"""
# Each deliverable with client comments, its owner, reviewer and first and last comment id.
THREADS_SQL = """
CREATE TEMPORARY TABLE threads AS
SELECT d.id, d.owner_id, d.reviewer_id, min(c.id) AS lo, max(c.id) AS hi
FROM comments c JOIN review_requests r ON r.id = c.request_id
  JOIN versions v ON v.id = r.version_id JOIN deliverables d ON d.id = v.deliverable_id
WHERE c.author_contact_id IS NOT NULL AND NOT c.internal GROUP BY d.id"""
# Indexes for the slow statements (see the EXPLAINs); the run says which are absent, and
# --with-suggested creates them first. The first two need query changes in board.attention:
# `with_client` ordered by a join on review_requests.sent_at (not a correlated subquery), and
# `overdue` also restricted to state = 'delivered' (the only state with an open request).
SUGGESTED = [(table, columns, f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns}){where}")
             for name, table, columns, where in [
    ("ix_review_requests_open_sent_at", "review_requests", "sent_at", " WHERE status = 'open'"),
    ("ix_deliverables_state_due_date_id", "deliverables", "state, due_date, id", ""),
    ("ix_deliverables_last_activity_at", "deliverables", "last_activity_at", ""),
    ("ix_deliverables_state_last_activity_at", "deliverables", "state, last_activity_at", ""),
    # One per dashboard section, in its order, carrying what "mine" filters on (0021).
    *((f"ix_deliverables_board_{name}", "deliverables", ", ".join(order),
       f" INCLUDE (owner_id, reviewer_id) WHERE {where.text}")
      for name, where, order in BOARD_INDEXES)]]


def build(n: int, now: datetime) -> None:
    """Drop and create the database, migrate it, then load it with plain SQL."""
    with psycopg.connect(PG + " dbname=postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    with create_app(CONFIG).app_context():
        upgrade()
        db.engine.dispose()
    params = {"n": n, "now": now, "today": now.date(), "start": now.replace(year=now.year - 4),
              "hash": hash_password(PASSWORD)}
    with psycopg.connect(PG + f" dbname={DB_NAME}", autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL statement_timeout = '300s'")
            conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
            conn.execute("SET LOCAL session_replication_role = replica")  # no FK triggers
            plain = conn.execute(  # indexes that back no constraint: rebuilt after the load
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND "
                "indexname NOT IN (SELECT conname FROM pg_constraint)", [TABLES]).fetchall()
            for name, _ in plain:
                conn.execute(f"DROP INDEX {name}")
            for statement in filter(str.strip, LOAD_SQL.split(";\n")):
                if statement.lstrip().startswith("INSERT INTO comment_seen_marks"):
                    conn.execute(THREADS_SQL)
                conn.execute(statement, params)  # type: ignore[arg-type]
            for _, definition in plain:
                conn.execute(definition)
            for table in TABLES:
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                             f"(SELECT max(id) FROM {table}))")
        conn.execute("VACUUM ANALYZE")


@dataclass
class Call:
    seconds: float
    statement: str
    parameters: Any
    rows: int


@dataclass
class Row:
    label: str
    times: list[float] = field(default_factory=list)
    sql: list[float] = field(default_factory=list)  # driver time of each repeat
    calls: list[Call] = field(default_factory=list)  # of the last repeat


def record(engine: Engine) -> list[Call]:
    """Every statement the engine sends from now on, with its parameters and driver time."""
    calls: list[Call] = []

    def before(conn: Any, *_: Any) -> None:
        conn.info["t0"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seconds = time.perf_counter() - conn.info.pop("t0")
        calls.append(Call(seconds, statement, parameters, cursor.rowcount))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    return calls


def measure(label: str, run: Callable[[], object], calls: list[Call], repeat: int,
            after: Callable[[], None] = lambda: None) -> Row:
    row = Row(label)
    for _ in range(repeat):
        calls.clear()
        started = time.perf_counter()
        run()
        row.times.append(time.perf_counter() - started)
        row.calls, row.sql = list(calls), [*row.sql, sum(c.seconds for c in calls)]
        after()
    print(f"  {label}: {median(row.times) * 1000:.1f} ms", flush=True)
    return row


def hints(plan: list[str]) -> list[str]:
    """What in a plan points at a missing index or a query that cannot use one."""
    found, loops = [], 0
    for line in plan:
        if m := re.search(r"Seq Scan on (\w+).*rows=(\d+) loops", line):
            found.append(f"sequential scan of {m[1]} ({int(m[2]):,} rows out)")
        if (m := re.search(r"Rows Removed by Filter: (\d+)", line)) and int(m[1]) >= 10_000:
            found.append(f"a filter discards {int(m[1]):,} rows")
        if m := re.search(r"Sort Method: (.+)", line):
            found.append(f"sort ({m[1].strip()})")
        if m := re.search(r"loops=(\d+)\)", line):
            loops = max(loops, int(m[1]))
    if loops >= 10_000:
        found.append(f"inner nodes run {loops:,} times"
                     + (" (correlated SubPlan)" if any("SubPlan" in x for x in plan) else ""))
    return list(dict.fromkeys(found))


def explain_slow(engine: Engine, rows: list[Row], slow_ms: float) -> None:
    """EXPLAIN the slowest statements of the slow rows (or name the big results if the time
    went to Python), then say which SUGGESTED indexes are missing."""
    seen: set[str] = set()
    with engine.connect() as conn:
        for row in (r for r in rows if median(r.times) * 1000 >= slow_ms):
            sql_ms, total_ms = median(row.sql) * 1000, median(row.times) * 1000
            biggest = sorted(row.calls, key=lambda c: c.rows, reverse=True)[:3]
            if sql_ms < total_ms / 2 and "rows " + biggest[0].statement not in seen:
                seen.add("rows " + biggest[0].statement)
                print(f"\n== {row.label}: SQL {sql_ms:.0f} of {total_ms:.0f} ms, the rest is "
                      "Python (ORM objects, template); largest results:")
                for call in biggest:
                    print(f"   {call.rows:7,} rows {call.seconds * 1000:6.1f} ms  "
                          f"{' '.join(call.statement.split())[:90]}")
            for call in sorted(row.calls, key=lambda c: c.seconds, reverse=True)[:3]:
                if call.seconds * 1000 < slow_ms / 3 or call.statement in seen:
                    continue
                seen.add(call.statement)
                plan = [r[0] for r in conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS) " + call.statement, call.parameters)]
                conn.rollback()
                sql, ran = " ".join(call.statement.split()), float(plan[-1].split()[-2])
                if ran < slow_ms / 3:  # the driver time was a wait, not this statement
                    print(f"\n== {row.label}: {call.seconds * 1000:.1f} ms in the driver, "
                          f"{ran:.1f} ms under EXPLAIN: {sql[:70]}")
                    continue
                print(f"\n== {row.label}: {call.seconds * 1000:.1f} ms in the driver for\n"
                      f"   {sql[:1200]}{' ...' if len(sql) > 1200 else ''}\n   params "
                      f"{str(call.parameters)[:200]}")
                print("\n".join("   " + line for line in plan))
                print("   -> " + ("; ".join(hints(plan)) or "no scan or sort to blame"))
        present = [r[0] for r in conn.exec_driver_sql(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'")]
    print()
    for table, columns, ddl in SUGGESTED:
        found = any(f"ON public.{table} USING btree ({columns})" in d for d in present)
        print(f"{'present' if found else 'MISSING'}: {ddl}")


def database_rows() -> int | None:
    """How many deliverables the benchmark database holds (None: no database yet)."""
    with psycopg.connect(PG + " dbname=postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone() \
                is None:
            return None
    with psycopg.connect(PG + f" dbname={DB_NAME}", autocommit=True) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM deliverables").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        seen_marks = conn.execute(
            "SELECT to_regclass('comment_seen_marks') IS NOT NULL AND "
            "EXISTS (SELECT 1 FROM comment_seen_marks)").fetchone()
    # A database loaded before comments and seen marks were generated is rebuilt.
    return row[0] if row and seen_marks and seen_marks[0] else None


def schema_matches() -> bool:
    """Migrate the kept database; it is kept only if it then matches the models (a revision
    filled in after the database was stamped with it is not applied again: rebuild)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with create_app(CONFIG).app_context():
        upgrade()
        with db.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), db.metadata)
        db.engine.dispose()
    for diff in diffs[:10]:
        print(f"schema differs from the models: {diff}", flush=True)
    return not diffs


def percentile(times: list[float], p: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def profile(client: Any, url: str, requests: int) -> None:
    """pyinstrument over in-process requests: where the time goes (SQL or Python)."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(requests):
        client.get(url)
    profiler.stop()
    print(f"\npyinstrument: GET {url} x {requests}")
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliverables", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--requests", type=int, default=30,
                        help="signed-in GET / and GET /?scope=everyone, each (p50, p90)")
    parser.add_argument("--slow-ms", type=float, default=50, help="EXPLAIN rows slower than")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the database if it holds --deliverables rows (migrated "
                             "to the newest revision); build it otherwise")
    parser.add_argument("--skip-load", action="store_true", help="reuse the loaded database")
    parser.add_argument("--dashboard-only", action="store_true",
                        help="time the dashboard only (not the list and its filters)")
    parser.add_argument("--profile", action="store_true",
                        help="pyinstrument over in-process GET / and GET /?scope=everyone")
    parser.add_argument("--with-suggested", action="store_true", help="add SUGGESTED first")
    parser.add_argument("--timeout", type=int, default=1800, help="give up after (s)")
    args = parser.parse_args()
    signal.alarm(args.timeout)  # bound the whole run
    now = datetime.now(UTC).replace(microsecond=0)
    os.environ["INSTANCE_PATH"] = tempfile.mkdtemp(prefix="signoff-bench-")
    reused = args.skip_load or (args.reuse and database_rows() == args.deliverables
                                and schema_matches())
    if reused:
        print(f"reusing {DB_NAME}", flush=True)
    else:
        t0 = time.perf_counter()
        build(args.deliverables, now)
        print(f"built {DB_NAME} in {time.perf_counter() - t0:.1f} s", flush=True)
    if args.with_suggested:
        with psycopg.connect(PG + f" dbname={DB_NAME}", autocommit=True) as conn:
            for *_, ddl in SUGGESTED:
                conn.execute(ddl)
            conn.execute("ANALYZE")

    app = create_app(CONFIG)
    with app.app_context():
        engine = db.engine
        calls = record(engine)
        counts = {t: db.session.scalar(text(f"SELECT count(*) FROM {t}")) for t in TABLES[4:]}
        print("rows: " + ", ".join(f"{t} {c:,}" for t, c in counts.items()), flush=True)
        user = db.session.get(User, 2)
        assert user is not None
        _, cursor = board.deliverable_page(board.Filters())
        for _ in range(18):  # follow the cursor to the 20th page
            _, cursor = board.deliverable_page(board.Filters(before=cursor))
        db.session.remove()
        delivered = DeliverableState.DELIVERED
        cases: list[tuple[str, str, board.Filters]] = [] if args.dashboard_only else [
            ("list, first page", "", board.Filters()),
            ("list, page 20 (cursor)", f"before={cursor}", board.Filters(before=cursor)),
            (f"client={CLIENT}", f"client={CLIENT}", board.Filters(client=CLIENT)),
            (f"project={PROJECT}", f"project={PROJECT}", board.Filters(project=PROJECT)),
            ("state=delivered", "state=delivered", board.Filters(state=delivered)),
            (f"owner={OWNER}", f"owner={OWNER}", board.Filters(owner=OWNER)),
            ("overdue", "overdue=1", board.Filters(overdue=True)),
            (f"client={CLIENT} + state=delivered", f"client={CLIENT}&state=delivered",
             board.Filters(client=CLIENT, state=delivered))]
        print(f"timing, {args.repeat} repeats each (median shown):", flush=True)
        rows = [measure(label, lambda sql=sql: db.session.execute(text(sql)).all(),
                        calls, args.repeat, db.session.remove) for label, sql in [
            ("bare: SELECT id ... ORDER BY id DESC LIMIT 50",
             "SELECT id FROM deliverables ORDER BY id DESC LIMIT 50"),
            ("bare: SELECT count(*) FROM deliverables", "SELECT count(*) FROM deliverables")]]
        rows += [measure(f"board.attention(user 2, everyone={everyone})",
                         lambda everyone=everyone: board.attention(user, everyone=everyone),
                         calls, args.repeat, db.session.remove) for everyone in (False, True)]
        rows += [measure(f"deliverable_page: {label}", lambda f=f: board.deliverable_page(f),
                         calls, args.repeat, db.session.remove) for label, _, f in cases]

    client = app.test_client()  # outside the app context: each request gets its own session
    response = client.post("/login", data={"email": "staff2@agency.example",
                                           "password": PASSWORD})
    assert response.status_code == 302, response.status_code

    def get(url: str, headers: dict[str, str] | None = None) -> None:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.status_code)

    # The dashboard, as signed-in requests, alternating with the bare page so both see the
    # same load: p50 and p90 over --requests each. Outside any app context, so each request
    # has a session of its own (nothing carried over in an identity map).
    bare_sql = text("SELECT id FROM deliverables ORDER BY id DESC LIMIT 50")

    def bare() -> None:
        with app.app_context():
            db.session.execute(bare_sql).all()

    dash = [Row("bare: SELECT id ... ORDER BY id DESC LIMIT 50 (alternating)"),
            Row("GET / (mine)"), Row("GET /?scope=everyone")]
    steps: list[Callable[[], object]] = [bare, lambda: get("/"),
                                         lambda: get("/?scope=everyone")]
    for step in steps:
        step()  # warm: templates compiled, connections open
    for _ in range(args.requests):
        for row, step in zip(dash, steps, strict=True):
            calls.clear()
            started = time.perf_counter()
            step()
            row.times.append(time.perf_counter() - started)
            row.calls, row.sql = list(calls), [*row.sql, sum(c.seconds for c in calls)]
    for row in dash:
        print(f"  {row.label}: p50 {median(row.times) * 1000:.1f} ms, "
              f"p90 {percentile(row.times, 0.9) * 1000:.1f} ms", flush=True)
    if args.profile:
        for url in ("/", "/?scope=everyone"):
            profile(client, url, 20)
    if not args.dashboard_only:
        rows += [measure(f"GET /deliverables?{query}",
                         lambda q=query: get(f"/deliverables?{q}"), calls, args.repeat)
                 for _, query, _ in cases]
        rows.append(measure("GET /deliverables (htmx: rows only)", lambda: get(
            "/deliverables", {"HX-Request": "true"}), calls, args.repeat))
    explain_slow(engine, rows + dash[1:], args.slow_ms)

    bare = median(rows[0].times)
    print(f"\n{args.deliverables:,} deliverables, {args.repeat} repeats; SQL ms: driver time "
          "(median); statements: per call or request (HTTP: incl. the session's user lookup)")
    print(f"| {'operation':<50} | median ms |  max ms | SQL ms | statements |   x bare |")
    print(f"|{'-' * 52}|----------:|--------:|-------:|-----------:|---------:|")
    for r in rows:
        mid = median(r.times)
        print(f"| {r.label:<50} | {mid * 1000:9.1f} | {max(r.times) * 1000:7.1f} | "
              f"{median(r.sql) * 1000:6.1f} | {len(r.calls):10} | {mid / bare:8.1f} |")
    bare = median(dash[0].times)
    print(f"\ndashboard, {args.requests} signed-in requests each, alternating with the bare "
          f"page (load: {os.getloadavg()[0]:.2f})")
    print(f"| {'request':<60} | p50 ms | p90 ms | SQL ms | statements | p50 x bare |")
    print(f"|{'-' * 62}|-------:|-------:|-------:|-----------:|-----------:|")
    for r in dash:
        mid = median(r.times)
        print(f"| {r.label:<60} | {mid * 1000:6.1f} | {percentile(r.times, 0.9) * 1000:6.1f} |"
              f" {median(r.sql) * 1000:6.1f} | {len(r.calls):10} | {mid / bare:10.1f} |")


if __name__ == "__main__":
    main()
