"""The client's review page and htmx comment post under load, against a bare Flask+Jinja app.

    .venv/bin/python bench/review_page.py [--seconds 15] [--db sqlite|postgres] [--profile 300]

Builds a throwaway database by the migrations (SQLite, or `signoff_bench_review` recreated on
the local PostgreSQL) with open requests of 5 versions, 3 approvers, 30 comments; counts SQL per
request in-process at 3/30/300 comments; drives `gunicorn -w 2` serving `wsgi:app` and a bare
Flask+Jinja app with 32 connections; profiles the slower app endpoint with pyinstrument.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import io
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from pyinstrument import Profiler
from sqlalchemy import event

from portal import create_app, workflow
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import Approver, Client, Contact, Project, Role, User, today_utc
from portal.models.review import Outcome, Policy
from portal.workflow import links
from portal.workflow.comments import post_comment

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-review-" * 4
PG_NAME = "signoff_bench_review"
CONNECTIONS = 32
REMARK = "a fairly long remark about the footer " * 3
BARE_APP = '''from flask import Flask, render_template, request
app = Flask(__name__)
ITEMS = [{"name": f"Contact {i % 3}", "body": f"Comment {i}: " + REMARK} for i in range(30)]
@app.get("/page")
def page():
    return render_template("page.html", items=ITEMS, title="Homepage")
@app.post("/fragment")
def fragment():
    return render_template("fragment.html", items=[*ITEMS, {"name": "Contact 0",
                           "body": request.form.get("body", "")}])
'''.replace("REMARK", repr(REMARK))
BARE_FRAGMENT = """<section id="comments"><h2>Comments</h2><ol class="thread">{% for c in items %}
<li class="comment from-client"><p class="meta"><strong>{{ c.name }}</strong> <span>(client)</span>
· <time datetime="2025-01-01T10:00:00+00:00">2025-01-01 10:00 UTC</time></p><p class="body">
{{ c.body }}</p></li>{% endfor %}</ol><form><textarea name="body"></textarea></form>"""
BARE_PAGE = ("<!doctype html><html><head><title>{{ title }}</title></head><body><h1>{{ title }}"
             "</h1>" + "<p>Please review the attached version of the homepage.</p>" * 100
             + '{% include "fragment.html" %}{% for v in range(4) %}<h3>Version {{ v }}</h3>'
             "{% endfor %}</body></html>")


def build_request(tag: str, comments: int) -> int:
    """One open request made by the workflow: 5 versions, 3 approvers. Its first approver."""
    staff, reviewer = (User(email=f"{n}-{tag}@agency.example", name=n.title(), role=Role.STAFF,
                            password_hash="x") for n in ("sam", "rae"))
    client = Client(name=f"Client {tag} GmbH")
    contacts = [Contact(client=client, name=f"Contact {i}", email=f"c{i}-{tag}@client.example")
                for i in range(3)]
    project = Project(client=client, name="Relaunch", owner=staff)
    db.session.add_all([staff, reviewer, client, *contacts, project])
    db.session.flush()
    due = today_utc() + timedelta(days=14)
    d = workflow.create_deliverable(staff, project, "Homepage", "The new homepage.", due)
    for n in range(1, 6):
        workflow.upload_version(staff, d, io.BytesIO(sample_pdf(f"v{n}")), f"home-v{n}.pdf",
                                f"Change {n}: new hero image and footer")
        workflow.submit_for_review(staff, d, reviewer)
        workflow.review_internally(reviewer, d, approve=True)
        request = workflow.deliver(staff, d, contacts, Policy.PARALLEL, due)
        if n < 5:
            workflow.record_decision(request.approvers[1], Outcome.APPROVED_WITH_CONDITIONS,
                                     "Fix the footer",
                                     seen_sha256=request.version.sha256)
            workflow.record_decision(request.approvers[0], Outcome.REJECTED, "Wrong colours",
                                     seen_sha256=request.version.sha256)
    db.session.commit()
    add_comments(request.approvers[0].id, comments)
    return request.approvers[0].id


def add_comments(approver_id: int, count: int) -> None:
    """Comments from the 3 approvers and, one in three, from staff."""
    request = db.session.get_one(Approver, approver_id).request
    for i in range(count):
        author = request.sent_by if i % 3 == 2 else request.approvers[i % 3].contact
        post_comment(author, request, f"Comment {i}: " + REMARK, seen_sha256=request.version.sha256)
    db.session.commit()
    db.session.info.clear()  # nothing is handed to a queue


def serve(target: str, chdir: Path, env: dict[str, str], log: Path,
          servers: list[subprocess.Popen[bytes]]) -> int:
    """`gunicorn -w 2` (sync workers) on a free loopback port, once it accepts connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen([str(REPO / ".venv/bin/gunicorn"), "-w", "2", "-b",
                             f"127.0.0.1:{port}", "--timeout", "30", "--graceful-timeout", "5",
                             "--no-control-socket", "--chdir", str(chdir), target],
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    servers.append(proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return port
        except OSError:
            time.sleep(0.1)
    sys.exit(f"gunicorn {target} did not start; see {log}")


def request_bytes(method: str, path: str, headers: dict[str, str], body: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   payload: bytes) -> tuple[int, dict[str, str], bytes]:
    writer.write(payload)
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    pairs = (line.partition(":") for line in head[1:] if line)
    headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(head[0].split()[1]), headers, body


async def connection(port: int, make: Callable[[], bytes], start: float, end: float,
                     done: list[tuple[float, int, int, float]]) -> None:
    """Keep-alive when the server allows it (gunicorn's sync worker closes every time)."""
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while (t0 := time.perf_counter()) < end:
        status, headers, body = 0, {"connection": "close"}, b""  # 0: no response
        try:
            if streams is None:
                streams = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
            status, headers, body = await asyncio.wait_for(exchange(*streams, make()), 10)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            await asyncio.sleep(0.01)
        if t0 >= start:
            done.append((time.perf_counter() - t0, status, len(body), time.perf_counter()))
        if streams and headers.get("connection", "").lower() == "close":
            streams[1].close()
            streams = None


def load(port: int, make: Callable[[], bytes], seconds: float, warmup: float) -> list[str]:
    """32 connections for warmup + seconds; requests started after the warm-up count."""
    done: list[tuple[float, int, int, float]] = []
    start = time.perf_counter() + warmup

    async def drive() -> None:
        await asyncio.gather(*(connection(port, make, start, start + seconds, done)
                               for _ in range(CONNECTIONS)))
    asyncio.run(drive())
    ok = sorted(d[0] for d in done if d[1] == 200) or [0.0]
    rps = len(ok) / (max(d[3] for d in done) - start) if done else 0.0
    return [f"{rps:.0f}", f"{ok[len(ok) // 2] * 1000:.1f}", f"{ok[int(len(ok) * 0.99)] * 1000:.1f}",
            str(sum(d[1] != 200 for d in done)), str(done[-1][2] if done else 0)]


def in_process(client: FlaskClient, method: str, url: str, **kw: Any) -> Any:
    """One request in a fresh context, as in production (its own app context and session)."""
    return contextvars.Context().run(client.open, url, method=method, **kw)


def signed_in(app: Flask, approver_id: int) -> tuple[FlaskClient, dict[str, str]]:
    """A test client that opened the approver's magic link; the htmx headers for posts."""
    client = app.test_client()
    with app.app_context():
        token = links.issue_token(db.session.get_one(Approver, approver_id))
    assert in_process(client, "GET", f"/r/{token}").status_code == 303
    page = in_process(client, "GET", "/review").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf, "no CSRF token on the review page"
    return client, {"HX-Request": "true", "X-CSRFToken": csrf.group(1)}


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(c) for c in column) for column in zip(header, *rows, strict=True)]
    for i, row in enumerate([header, *rows]):
        print("| " + " | ".join(c.ljust(w) if j == 0 else c.rjust(w)
                                for j, (c, w) in enumerate(zip(row, widths, strict=True))) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) if j == 0 else "-" * (w + 1) + ":"
                                 for j, w in enumerate(widths)) + "|")


def count_statements(app: Flask, approver_id: int) -> None:
    """Statements, in-process time and sizes per request as the thread grows: 3, 30, 300."""
    client, hx = signed_in(app, approver_id)
    statements: list[int] = []

    def count(*_: object) -> None:
        statements.append(1)
    rows, have = [], 3
    with app.app_context():
        event.listen(engine := db.engine, "before_cursor_execute", count)
    for target in (3, 30, 300):
        with app.app_context():
            add_comments(approver_id, target - have)
        statements.clear()
        page = in_process(client, "GET", "/review")
        get_sql, times = len(statements), []
        for _ in range(20):
            t0 = time.perf_counter()
            in_process(client, "GET", "/review")
            times.append(time.perf_counter() - t0)
        statements.clear()
        fragment = in_process(client, "POST", "/review/comments", headers=hx,
                              data={"body": f"Counted comment at {target}"})
        assert page.status_code == fragment.status_code == 200, fragment.data[:300]
        assert page.data.count(b'<li class="comment ') == target
        have = target + 1
        rows.append([str(target), str(get_sql), str(len(statements)),
                     f"{sorted(times)[10] * 1000:.1f}", str(len(page.data)),
                     str(len(fragment.data)), f"{len(fragment.data) / len(page.data):.0%}"])
    event.remove(engine, "before_cursor_execute", count)
    print("\nin-process (Flask test client), one request each; the htmx post adds a comment")
    table(["comments", "SQL per GET /review", "SQL per htmx post", "GET ms (median of 20)",
           "page bytes", "fragment bytes", "fragment/page"], rows)


def http_runs(env: dict[str, str], work: Path, app: Flask, approver_id: int, seconds: float,
              warmup: float) -> list[list[str]]:
    """The real app and the bare app under gunicorn, 32 connections for each endpoint. The
    session cookie (same SECRET_KEY) comes from opening the magic link in-process."""
    client, htmx = signed_in(app, approver_id)
    session = client.get_cookie("session")
    assert session is not None, "opening the magic link set no session cookie"
    htmx["Cookie"] = cookie = f"session={session.value}"
    (work / "bare" / "templates").mkdir(parents=True)
    for name, text in (("bare.py", BARE_APP), ("templates/fragment.html", BARE_FRAGMENT),
                       ("templates/page.html", BARE_PAGE)):
        (work / "bare" / name).write_text(text)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        real_port = serve("wsgi:app", REPO, env, work / "gunicorn-app.log", servers)
        bare_port = serve("bare:app", work / "bare", env, work / "gunicorn-bare.log", servers)
        sent = iter(range(10**9))

        def post(path: str, headers: dict[str, str]) -> Callable[[], bytes]:
            form = {"Content-Type": "application/x-www-form-urlencoded", **headers}
            return lambda: request_bytes("POST", path, form, urlencode(
                {"body": f"Load comment {next(sent)} at {time.time_ns()}"}))
        plans: list[tuple[str, int, Callable[[], bytes]]] = [
            ("GET /review", real_port, lambda: request_bytes("GET", "/review", {"Cookie": cookie})),
            ("bare GET /page", bare_port, lambda: request_bytes("GET", "/page", {})),
            ("htmx POST /review/comments", real_port, post("/review/comments", htmx)),
            ("bare POST /fragment", bare_port, post("/fragment", {})),
        ]
        results = [[label, *load(port, make, seconds, warmup)] for label, port, make in plans]
    finally:
        for proc in servers:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
            proc.kill()  # a no-op once it has exited
    for i, row in enumerate(results):
        row.append(f"{float(row[1]) / float(results[i | 1][1]):.2f}" if i % 2 == 0 else "1")
    return results


def profile(app: Flask, approver_id: int, slow: str, requests: int) -> None:
    """pyinstrument over `requests` in-process requests, on a request of its own."""
    client, hx = signed_in(app, approver_id)
    profiler, t0 = Profiler(interval=0.0005), time.perf_counter()
    with profiler:
        for i in range(requests):
            if slow == "GET /review":
                in_process(client, "GET", "/review")
            else:
                in_process(client, "POST", "/review/comments", headers=hx,
                           data={"body": f"Profiled comment {i}"})
    ms = (time.perf_counter() - t0) * 1000 / requests
    for title, flat, top in (("call tree", False, 45), ("own time by function", True, 20)):
        lines = profiler.output_text(unicode=False, color=False, flat=flat).splitlines()
        first = next(i for i, line in enumerate(lines) if line.startswith("Profile at")) + 2
        print(f"\npyinstrument: {slow} in-process x {requests} ({ms:.1f} ms each), {title}, "
              f"top {top} lines")
        print("\n".join(lines[first:first + top]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--profile", type=int, default=300, help="requests to profile")
    parser.add_argument("--timeout", type=int, default=900, help="give up after (s)")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, lambda *_: sys.exit(f"gave up after {args.timeout} s"))
    signal.alarm(args.timeout)  # SystemExit: the servers are still stopped
    work = Path(tempfile.mkdtemp(prefix="signoff-bench-review-"))
    url = f"sqlite:///{work / 'bench.sqlite3'}"
    if args.db == "postgres":
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres "
                             "connect_timeout=5", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {PG_NAME}")
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_NAME}"
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "FLASK_DEBUG"}}
    env.update({"SECRET_KEY": SECRET, "DATABASE_URL": url, "INSTANCE_PATH": str(work / "inst"),
                "FILE_STORE": str(work / "files"), "CLIENT_RATE_LIMIT": "1000000 per minute"})
    os.environ["INSTANCE_PATH"] = env["INSTANCE_PATH"]
    app = create_app({"TESTING": True, "SECRET_KEY": SECRET, "SQLALCHEMY_DATABASE_URI": url,
                      "FILE_STORE": env["FILE_STORE"], "REDIS_URL": "",
                      "CLIENT_RATE_LIMIT": env["CLIENT_RATE_LIMIT"]})
    with app.app_context():
        upgrade()
        load_id, count_id, profile_id = (build_request(tag, n) for tag, n in
                                         (("load", 30), ("count", 3), ("profile", 30)))
    print(f"\nbuilt {args.db}: 3 open requests, each 5 versions and 3 approvers (30, 3 and 30 "
          f"comments), in {work}")
    count_statements(app, count_id)
    results = http_runs(env, work, app, load_id, args.seconds, args.warmup)
    with app.app_context():
        thread = len(db.session.get_one(Approver, load_id).request.comments)
    print(f"\ngunicorn -w 2 (sync workers, no keep-alive), {CONNECTIONS} connections, "
          f"{args.seconds:g} s after {args.warmup:g} s warm-up, generator on the same "
          f"{os.cpu_count()} CPUs; 30 comments before the posts, {thread} after")
    table(["endpoint", "req/s", "p50 ms", "p99 ms", "errors", "bytes (last)",
           "x bare req/s"], results)
    profile(app, profile_id, min(results[0], results[2], key=lambda r: float(r[1]))[0],
            args.profile)
    if any(row[4] != "0" for row in results):
        sys.exit(f"ERRORS: see the table and the gunicorn logs in {work}")


if __name__ == "__main__":
    main()
