"""The client's review page and htmx comment post under load, against a bare Flask+Jinja app.

    .venv/bin/python bench/review_page.py [--seconds 15] [--db sqlite|postgres|both]
                                          [--profile 300]

Builds a throwaway database by the migrations (SQLite, or `signoff_bench_review` recreated on
the local PostgreSQL; `both` runs one after the other in the same run) with open requests of 5
versions, 3 approvers, 30 comments; counts SQL per request in-process at 3/30/300 comments and
with many pins, pages and versions; drives `gunicorn -w 2` serving `wsgi:app` and a bare
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
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from pyinstrument import Profiler
from sqlalchemy import delete, event, select, update

from bench.names import bench_database
from portal import create_app, workflow
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import (
    Approver,
    Client,
    Comment,
    Contact,
    PageRender,
    Project,
    RenderStatus,
    Role,
    User,
    VersionRender,
    today_utc,
)
from portal.models.review import Outcome, Policy
from portal.workflow import links
from portal.workflow.comments import post_comment

REPO = Path(__file__).resolve().parent.parent
SECRET = "bench-review-" * 4
PG_NAME = bench_database("signoff_bench_review")
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


def build_request(tag: str, comments: int, versions: int = 5) -> int:
    """One open request made by the workflow: `versions` versions, 3 approvers. Its first
    approver."""
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
    for n in range(1, versions + 1):
        workflow.upload_version(staff, d, io.BytesIO(sample_pdf(f"v{n}")), f"home-v{n}.pdf",
                                f"Change {n}: new hero image and footer")
        workflow.submit_for_review(staff, d, reviewer)
        workflow.review_internally(reviewer, d, approve=True)
        request = workflow.deliver(staff, d, contacts, Policy.PARALLEL, due)
        if n < versions:
            workflow.record_decision(request.approvers[1], Outcome.APPROVED_WITH_CONDITIONS,
                                     "Fix the footer", conditions=["Fix the footer",
                                                                   "Darker blue"],
                                     seen_sha256=request.version.sha256)
            workflow.record_decision(request.approvers[0], Outcome.REJECTED, "Wrong colours",
                                     seen_sha256=request.version.sha256)
    # Nothing is handed to the in-process worker: its renders and emails would wait on this
    # long transaction's write lock (SQLite) and fail. set_pages() makes the pages.
    db.session.info.clear()
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


def set_pages(approver_id: int, pages: int) -> None:
    """The version under review shown as `pages` rendered pages (rows only: the bench never
    fetches the images)."""
    version_id = db.session.get_one(Approver, approver_id).request.version_id
    db.session.execute(delete(PageRender).where(PageRender.version_id == version_id))
    if not db.session.execute(update(VersionRender).where(
            VersionRender.version_id == version_id).values(
            status=RenderStatus.READY, page_count=pages)).rowcount:
        db.session.add(VersionRender(version_id=version_id, status=RenderStatus.READY,
                                     page_count=pages))
    db.session.add_all(PageRender(version_id=version_id, number=n, width=1131, height=1600,
                                  thumb_width=170, thumb_height=240, display_key=f"{n:064x}",
                                  thumb_key=f"{n + 10**6:064x}", media_type="image/jpeg",
                                  text="") for n in range(1, pages + 1))
    db.session.commit()


def pin_comments(approver_id: int, pins: int, pages: int) -> None:
    """Pin the first `pins` comments of the thread on the version under review (spots and
    boxes spread over the pages)."""
    request = db.session.get_one(Approver, approver_id).request
    ids = db.session.scalars(select(Comment.id).where(Comment.request_id == request.id)
                             .order_by(Comment.id).limit(pins)).all()
    for i, ident in enumerate(ids):
        box = (0.1, 0.05) if i % 2 else (None, None)
        db.session.execute(update(Comment).where(Comment.id == ident).values(
            page=i % pages + 1, x=(i % 9) / 10, y=(i % 7) / 10, w=box[0], h=box[1]))
    db.session.commit()


def serve(target: str, chdir: Path, env: dict[str, str], log: Path,
          servers: list[subprocess.Popen[bytes]], probe: str) -> int:
    """`gunicorn -w 2` (sync workers) on a free loopback port, once both workers answer
    `probe` (a loaded machine takes many seconds to boot them: the load must not start
    before they do). An empty config of its own: gunicorn would otherwise read the
    repository's gunicorn.conf.py from the working folder (gthread, threads, keep-alive)."""
    config = log.with_name("gunicorn-bench.conf.py")
    config.write_text("# empty: gunicorn's defaults (sync workers, no keep-alive)\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    proc = subprocess.Popen([gunicorn, "-c", str(config), "-w", "2", "-b",
                             f"127.0.0.1:{port}", "--timeout", "60", "--graceful-timeout", "5",
                             "--no-control-socket", "--chdir", str(chdir), target],
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    servers.append(proc)
    deadline, answered = time.monotonic() + 120, 0
    while time.monotonic() < deadline and proc.poll() is None and answered < 6:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=60):
                answered += 1
        except urllib.error.HTTPError:
            answered += 1
        except OSError:
            time.sleep(0.2)
    if answered < 6:
        sys.exit(f"gunicorn {target} did not start; see {log}")
    return port


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


@dataclass
class Visitor:
    client: FlaskClient
    url: str  # /review/<public id>
    hx: dict[str, str]  # the headers of an htmx post: HX-Request and the CSRF token
    sha256: str  # of the version on screen, as the page's forms send it

    def get(self) -> Any:
        return in_process(self.client, "GET", self.url)

    def post(self, body: str) -> Any:
        return in_process(self.client, "POST", self.url + "/comments", headers=self.hx,
                          data={"body": body, "sha256": self.sha256})


def signed_in(app: Flask, approver_id: int) -> Visitor:
    """A test client that opened the approver's magic link, as the review page sees it."""
    client = app.test_client()
    with app.app_context():
        token = links.issue_token(db.session.get_one(Approver, approver_id))
    opened = in_process(client, "GET", f"/r/{token}")
    assert opened.status_code == 303, opened.status_code
    url = urlsplit(opened.headers["Location"]).path
    page = in_process(client, "GET", url).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    sha256 = re.search(r'name="sha256" value="([0-9a-f]{64})"', page)
    assert csrf and sha256, "no CSRF token or version fingerprint on the review page"
    return Visitor(client, url, {"HX-Request": "true", "X-CSRFToken": csrf.group(1)},
                   sha256.group(1))


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(c) for c in column) for column in zip(header, *rows, strict=True)]
    for i, row in enumerate([header, *rows]):
        print("| " + " | ".join(c.ljust(w) if j == 0 else c.rjust(w)
                                for j, (c, w) in enumerate(zip(row, widths, strict=True))) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) if j == 0 else "-" * (w + 1) + ":"
                                 for j, w in enumerate(widths)) + "|")


def count_statements(app: Flask, approver_id: int, versions_id: int) -> None:
    """Statements, in-process time and sizes per request as the thread grows (3, 30, 300
    comments), then with 100 pins, 100 pages, and on a request with 20 versions."""
    visitor = signed_in(app, approver_id)
    statements: list[int] = []

    def count(*_: object) -> None:
        statements.append(1)

    def measure(label: str, who: Visitor, comments: int, pins: int, pages: int,
                versions: int) -> None:
        statements.clear()
        page = who.get()
        get_sql, times = len(statements), []
        for _ in range(20):
            t0 = time.perf_counter()
            who.get()
            times.append(time.perf_counter() - t0)
        statements.clear()
        fragment = who.post(f"Counted comment at {label}")
        assert page.status_code == fragment.status_code == 200, fragment.data[:300]
        shown = page.data.count(b'<li class="comment ')
        assert shown == comments, (shown, comments)
        assert page.data.count(b'class="marker') == pins
        rows.append([label, str(comments), str(pins), str(pages), str(versions), str(get_sql),
                     str(len(statements)), f"{sorted(times)[10] * 1000:.1f}",
                     str(len(page.data)), str(len(fragment.data)),
                     f"{len(fragment.data) / len(page.data):.1%}"])

    rows: list[list[str]] = []
    with app.app_context():
        event.listen(engine := db.engine, "before_cursor_execute", count)
    have = 3
    for target in (3, 30, 300):
        with app.app_context():
            add_comments(approver_id, target - have)
        measure(f"{target} comments", visitor, target, 0, 1, 5)
        have = target + 1  # the counted post added one
    with app.app_context():
        pin_comments(approver_id, 100, 1)
    measure("100 pins", visitor, have, 100, 1, 5)
    with app.app_context():
        set_pages(approver_id, 100)
        pin_comments(approver_id, 100, 100)
    measure("100 pages", visitor, have + 1, 100, 100, 5)
    measure("20 versions", signed_in(app, versions_id), 30, 0, 1, 20)
    event.remove(engine, "before_cursor_execute", count)
    print("\nin-process (Flask test client), one request each; the htmx post adds a comment")
    table(["case", "comments", "pins", "pages", "versions", "SQL per GET", "SQL per htmx post",
           "GET ms (median of 20)", "page bytes", "fragment bytes", "fragment/page"], rows)


def http_runs(env: dict[str, str], work: Path, app: Flask, approver_id: int, seconds: float,
              warmup: float) -> list[list[str]]:
    """The real app and the bare app under gunicorn, 32 connections for each endpoint. The
    session cookie (same SECRET_KEY) comes from opening the magic link in-process. The posts
    send no `after` (the newest comment on screen): each answer is the poster's own comment,
    as it is for a person whose thread was up to date."""
    visitor = signed_in(app, approver_id)
    session = visitor.client.get_cookie("session")
    assert session is not None, "opening the magic link set no session cookie"
    cookie = f"session={session.value}"
    htmx = {**visitor.hx, "Cookie": cookie}
    bare = work / "bare"
    (bare / "templates").mkdir(parents=True, exist_ok=True)
    for name, text in (("bare.py", BARE_APP), ("templates/fragment.html", BARE_FRAGMENT),
                       ("templates/page.html", BARE_PAGE)):
        (bare / name).write_text(text)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        real_port = serve("wsgi:app", REPO, env, work / "gunicorn-app.log", servers, "/login")
        bare_port = serve("bare:app", bare, env, work / "gunicorn-bare.log", servers, "/page")
        sent = iter(range(10**9))

        def post(path: str, headers: dict[str, str], **form: str) -> Callable[[], bytes]:
            kind = {"Content-Type": "application/x-www-form-urlencoded", **headers}
            return lambda: request_bytes("POST", path, kind, urlencode(
                {"body": f"Load comment {next(sent)} at {time.time_ns()}", **form}))
        plans: list[tuple[str, int, Callable[[], bytes]]] = [
            ("GET /review/<id>", real_port,
             lambda: request_bytes("GET", visitor.url, {"Cookie": cookie})),
            ("bare GET /page", bare_port, lambda: request_bytes("GET", "/page", {})),
            ("htmx POST /review/<id>/comments", real_port,
             post(visitor.url + "/comments", htmx, sha256=visitor.sha256)),
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
        row.append(f"{float(row[1]) / max(float(results[i | 1][1]), 1):.2f}"
                   if i % 2 == 0 else "1")
    return results


def profile(app: Flask, approver_id: int, slow: str, requests: int) -> None:
    """pyinstrument over `requests` in-process requests, on a request of its own."""
    visitor = signed_in(app, approver_id)
    profiler, t0 = Profiler(interval=0.0005), time.perf_counter()
    with profiler:
        for i in range(requests):
            if slow.startswith("GET"):
                visitor.get()
            else:
                visitor.post(f"Profiled comment {i}")
    ms = (time.perf_counter() - t0) * 1000 / requests
    for title, flat, top in (("call tree", False, 45), ("own time by function", True, 20)):
        lines = profiler.output_text(unicode=False, color=False, flat=flat).splitlines()
        first = next(i for i, line in enumerate(lines) if line.startswith("Profile at")) + 2
        print(f"\npyinstrument: {slow} in-process x {requests} ({ms:.1f} ms each), {title}, "
              f"top {top} lines")
        print("\n".join(lines[first:first + top]))


def run(kind: str, args: argparse.Namespace) -> list[list[str]]:
    """Build, count, load and profile on one backend; the load table's rows."""
    work = Path(tempfile.mkdtemp(prefix=f"signoff-bench-review-{kind}-"))
    url = f"sqlite:///{work / 'bench.sqlite3'}"
    if kind == "postgres":
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
        load_id, count_id, profile_id, versions_id = (
            build_request(tag, n, versions) for tag, n, versions in
            (("load", 30, 5), ("count", 3, 5), ("profile", 30, 5), ("versions", 30, 20)))
        for ident in (load_id, count_id, profile_id, versions_id):
            set_pages(ident, 1)  # the sample's one page
    print(f"\n## {kind}\n\nbuilt {kind}: 4 open requests of 3 approvers (5 versions with 30, 3 "
          f"and 30 comments; 20 versions with 30 comments), in {work}")
    count_statements(app, count_id, versions_id)
    results = http_runs(env, work, app, load_id, args.seconds, args.warmup)
    with app.app_context():
        thread = len(db.session.get_one(Approver, load_id).request.comments)
        db.session.remove()
        db.engine.dispose()
    print(f"\ngunicorn -w 2 (sync workers, no keep-alive), {CONNECTIONS} connections, "
          f"{args.seconds:g} s after {args.warmup:g} s warm-up, generator on the same "
          f"{os.cpu_count()} CPUs; 30 comments before the posts, {thread} after; "
          f"load {os.getloadavg()[0]:.2f}")
    table(["endpoint", "req/s", "p50 ms", "p99 ms", "errors", "bytes (last)",
           "x bare req/s"], results)
    if args.profile:
        profile(app, profile_id, min(results[0], results[2], key=lambda r: float(r[1]))[0],
                args.profile)
    if any(row[4] != "0" for row in results):
        sys.exit(f"ERRORS: see the table and the gunicorn logs in {work}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--profile", type=int, default=300, help="requests to profile (0: none)")
    parser.add_argument("--timeout", type=int, default=1500, help="give up after (s)")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, lambda *_: sys.exit(f"gave up after {args.timeout} s"))
    signal.alarm(args.timeout)  # SystemExit: the servers are still stopped
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(f"load average at the start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    results = {kind: run(kind, args) for kind in kinds}
    if len(kinds) == 2:
        print("\n## SQLite against PostgreSQL, same run\n")
        table(["endpoint", "SQLite req/s", "PostgreSQL req/s", "SQLite / PostgreSQL"],
              [[lite[0], lite[1], pg[1], f"{float(lite[1]) / max(float(pg[1]), 1):.2f}"]
               for lite, pg in zip(results["sqlite"], results["postgres"], strict=True)
               if not lite[0].startswith("bare")])


if __name__ == "__main__":
    main()
