"""Shared fixtures: the app on each database backend, a signed-in browser, and factories.

The suite runs once on SQLite and once more on PostgreSQL when TEST_DATABASE_URL is set.
Without a server the PostgreSQL half is skipped with the reason; under CI=true it fails.
"""
from __future__ import annotations

import asyncio
import contextvars
import io
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from werkzeug.datastructures import MultiDict

from portal import create_app, workflow
from portal.config import _normalise_database_url
from portal.demo.samples import sample_pdf
from portal.extensions import db, limiter
from portal.models import (
    Client,
    Contact,
    Deliverable,
    DeliverableState,
    Policy,
    Project,
    Role,
    User,
    today_utc,
    utcnow,
)
from portal.notifications import background

IN_CI = os.environ.get("CI", "").lower() == "true"
PASSWORD = "correct horse battery"
PASSWORD_HASH = PasswordHasher().hash(PASSWORD)  # hashed once; argon2 is slow on purpose
# The version a client page shows, as its forms and its "viewed" beacon carry it.
SHOWN_VERSION = re.compile(r'(?:name="sha256" value="|"sha256": ")([0-9a-f]{64})"')
SECRET = "test-secret-key-that-is-long-enough-0123456789"


_FIGURES: list[str] = []


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Note a figure the test measured (query counts, load figures); `make test` lists
    them all at the end under "figures" instead of printing from inside tests."""
    def note(line: str) -> None:
        _FIGURES.append(f"{request.node.name}: {line}")
    return note


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES:
        terminalreporter.section("figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


def need_server(what: str, reason: str) -> None:
    """Skip on a laptop without the server; fail under CI, where it must be there."""
    message = f"{what} is not available: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true requires it)", pytrace=False)
    pytest.skip(message)


def _postgres_url() -> str:
    raw = os.environ.get("TEST_DATABASE_URL", "")
    if not raw:
        need_server("PostgreSQL", "TEST_DATABASE_URL is not set")
    url = _normalise_database_url(raw)
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
            conn.commit()
        engine.dispose()
    except sa.exc.OperationalError as exc:
        need_server("PostgreSQL", f"cannot connect to {url}: {exc.orig}")
    return url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database per backend for the session, built by the real migrations."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    else:
        url = _postgres_url()
    app = create_app({"TESTING": True, "SECRET_KEY": SECRET, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url


def _empty_all_tables() -> None:
    tables = db.metadata.sorted_tables
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(t.name for t in tables)
        db.session.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in reversed(tables):
            db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture
def app_config(tmp_path) -> dict[str, Any]:
    """Override settings per test by editing this dict before `app` is built."""
    return {
        "TESTING": True,
        "SECRET_KEY": SECRET,
        "FILE_STORE": str(tmp_path / "files"),
        "LOGIN_RATE_LIMIT": "1000 per minute",
        "PUBLIC_BASE_URL": "http://portal.test",
        # No sealing key unless a test asks for one (instance/ may hold a dev key).
        "SIGNING_KEY": "", "SIGNING_CERT": "", "SIGNING_PKCS12": "",
    }


def _settle_jobs(app: Flask) -> Callable[[Any], None]:
    """Without Redis, jobs run on the app's background thread after the commit. A commit
    on the test's own thread (its requests through the test client included) waits until
    they have all run, so the test reads their results; live servers' threads do not."""
    test_thread = threading.get_ident()

    def settle(session: Any) -> None:
        if threading.get_ident() == test_thread and not session.in_nested_transaction():
            assert background.wait_until_idle(app, timeout=60), "background jobs still running"
    return settle


@pytest.fixture
def app(database_url: str, app_config: dict[str, Any]) -> Iterator[Flask]:
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": database_url})
    limiter.reset()
    settle = _settle_jobs(app)
    sa.event.listen(db.session, "after_commit", settle)  # after the hook that dispatches
    with app.app_context():
        _empty_all_tables()
        yield app
        sa.event.remove(db.session, "after_commit", settle)
        assert background.stop(app, timeout=60), "background jobs still running"
        db.session.remove()
        db.engine.dispose()


class Browser:
    """A test client that signs in and sends the CSRF token like a real form.

    Each request runs in a fresh context, as in production: its own app context, `g`
    and database session. The test's session commits before and re-reads after.
    """

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self._token: str | None = None
        # The review page the last link opened led to (/review/<approver public id>), and
        # the version SHA-256 the last client page showed: what its forms would send.
        self.review: str | None = None
        self.on_screen: str | None = None

    def _send(self, method: str, url: str, **kwargs: Any):
        db.session.commit()
        response = contextvars.Context().run(self.client.open, url, method=method, **kwargs)
        db.session.expire_all()
        self._remember(url, response)
        return response

    def _remember(self, url: str, response: Any) -> None:
        target = urlsplit(response.headers.get("Location", "")).path
        if url.startswith("/r/") and target.startswith("/review/"):
            self.review = target
        if response.mimetype == "text/html" and not response.direct_passthrough:
            shown = SHOWN_VERSION.search(response.get_data(as_text=True))
            if shown:
                self.on_screen = shown.group(1)

    def csrf_token(self) -> str:
        if self._token is None:
            page = self.get("/login").get_data(as_text=True)
            if "csrf_token" not in page:  # signed in: /login redirects
                page = self.get("/clients").get_data(as_text=True)
            match = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert match, "no CSRF token on the page"
            self._token = match.group(1)
        return self._token

    def login(self, email: str, password: str = PASSWORD):
        self._token = None
        response = self.post("/login", data={"email": email, "password": password})
        self._token = None  # signing in starts a fresh session
        return response

    def get(self, url: str, **kwargs: Any):
        return self._send("GET", url, **kwargs)

    def post(self, url: str, data: Any = None, **kwargs: Any):
        """POST a form; `data` may be a dict or a MultiDict (for repeated fields)."""
        # A plain dict stays a dict: MultiDict would split (stream, name) file tuples.
        form = data.copy() if isinstance(data, MultiDict) else dict(data or {})
        form.setdefault("csrf_token", self.csrf_token())
        if url.startswith("/review/") and self.on_screen:  # as the page's own form would
            form.setdefault("sha256", self.on_screen)
        return self._send("POST", url, data=form, **kwargs)

    def htmx_post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any):
        headers = {"HX-Request": "true", **kwargs.pop("headers", {})}
        return self.post(url, data, headers=headers, **kwargs)


@pytest.fixture
def browser(app: Flask) -> Browser:
    return Browser(app.test_client())


@pytest.fixture
def make_browser(app: Flask) -> Callable[[], Browser]:
    return lambda: Browser(app.test_client())


# --- factories -------------------------------------------------------------------------

@pytest.fixture
def make_user(app: Flask) -> Callable[..., User]:
    counter = iter(range(1, 10_000))

    def make(role: Role = Role.STAFF, email: str | None = None, name: str | None = None,
             active: bool = True) -> User:
        n = next(counter)
        user = User(email=email or f"{role.value}{n}@agency.example",
                    name=name or f"{role.value.title()} {n}",
                    password_hash=PASSWORD_HASH, role=role, active=active)
        db.session.add(user)
        db.session.commit()
        return user
    return make


class ApiClient:
    """Calls /api/v1 with a bearer token, each call in a fresh context as in production.
    The test's session commits before and re-reads after, like Browser."""

    def __init__(self, client: FlaskClient, secret: str, user: User) -> None:
        self.client, self.secret, self.user = client, secret, user

    def call(self, method: str, url: str, *, headers: dict[str, str] | None = None,
             **kwargs: Any):
        db.session.commit()
        headers = {"Authorization": f"Bearer {self.secret}", **(headers or {})}
        response = contextvars.Context().run(self.client.open, url, method=method,
                                             headers=headers, **kwargs)
        db.session.expire_all()
        return response

    def get(self, url: str, **kwargs: Any):
        return self.call("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any):
        return self.call("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any):
        return self.call("PATCH", url, **kwargs)

    def put(self, url: str, **kwargs: Any):
        return self.call("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any):
        return self.call("DELETE", url, **kwargs)


@pytest.fixture
def make_api(app: Flask, make_user) -> Callable[..., ApiClient]:
    """An API client acting as `user` (a new staff member by default) with a fresh token."""
    def make(user: User | None = None, scopes: tuple[str, ...] = ("read", "write"),
             expires_on: date | None = None) -> ApiClient:
        from portal.people.api_tokens import create_token
        user = user or make_user(Role.STAFF)
        _token, secret = create_token(user, "tests", list(scopes), expires_on, utcnow())
        db.session.commit()
        return ApiClient(app.test_client(), secret, user)
    return make


@pytest.fixture
def api(make_api, staff) -> ApiClient:
    """Sam Staff's read-and-write token."""
    return make_api(staff)


@pytest.fixture
def staff(make_user) -> User:
    return make_user(Role.STAFF, email="sam@agency.example", name="Sam Staff")


@pytest.fixture
def colleague(make_user) -> User:
    return make_user(Role.STAFF, email="cora@agency.example", name="Cora Colleague")


@pytest.fixture
def make_client(app: Flask) -> Callable[..., Client]:
    counter = iter(range(1, 10_000))

    def make(name: str | None = None, contacts: int = 2) -> Client:
        n = next(counter)
        client = Client(name=name or f"Client {n}")
        db.session.add(client)
        for i in range(1, contacts + 1):
            db.session.add(Contact(client=client, name=f"Contact {n}.{i}",
                                   email=f"contact{i}@client{n}.example"))
        db.session.commit()
        return client
    return make


@pytest.fixture
def make_project(make_client, staff) -> Callable[..., Project]:
    def make(client: Client | None = None, owner: User | None = None) -> Project:
        client = client or make_client()
        project = Project(client=client, name=f"Project for {client.name}", owner=owner or staff)
        db.session.add(project)
        db.session.commit()
        return project
    return make


def forge_token(payload: dict[str, Any], *, key: str = SECRET, salt: str | None = None) -> str:
    """A review-link token signed outside the app: another key, purpose or payload."""
    from itsdangerous import URLSafeTimedSerializer

    from portal.workflow.links import SALT

    return URLSafeTimedSerializer(key, salt=salt or SALT).dumps(payload)


def token_payload(approver: Any) -> dict[str, Any]:
    return {"a": approver.public_id, "g": approver.link_generation}


def on_screen(approver: Any) -> str:
    """The SHA-256 a review page shows this approver: what a decision or comment names."""
    return approver.request.version.sha256


def run_out_link(approver: Any) -> None:
    """The approver's link lifetime ended a few minutes ago (as 14 quiet days would do)."""
    approver.link_expires_at = utcnow() - timedelta(minutes=5)
    db.session.commit()


def stored_path(app: Flask, key: str) -> Path:
    """Where the content-addressed store keeps this key (files/ab/cd/<key>)."""
    return Path(app.config["FILE_STORE"]) / key[:2] / key[2:4] / key


def future(days: int = 7) -> date:
    return today_utc() + timedelta(days=days)


@pytest.fixture
def make_deliverable(make_project, staff, colleague) -> Callable[..., Deliverable]:
    """A deliverable driven through the real workflow up to the state asked for."""
    def make(state: DeliverableState = DeliverableState.DRAFT, *, project: Project | None = None,
             policy: Policy = Policy.PARALLEL, approvers: int = 1,
             with_version: bool = True) -> Deliverable:
        project = project or make_project()
        d = workflow.create_deliverable(staff, project, "Homepage v3", "The new homepage.",
                                        future(14))
        if with_version:
            workflow.upload_version(staff, d, io.BytesIO(sample_pdf("Homepage v3")),
                                    "homepage.pdf", "First cut")
        if state != DeliverableState.DRAFT:
            workflow.submit_for_review(staff, d, colleague)
        if state not in (DeliverableState.DRAFT, DeliverableState.IN_REVIEW):
            workflow.review_internally(colleague, d, approve=True)
        if state not in (DeliverableState.DRAFT, DeliverableState.IN_REVIEW,
                         DeliverableState.READY):
            contacts = project.client.contacts[:approvers]
            request = workflow.deliver(staff, d, contacts, policy, future(7))
            from portal.models import Outcome
            if state == DeliverableState.APPROVED:
                for a in request.approvers:
                    workflow.record_decision(a, Outcome.APPROVED, seen_sha256=on_screen(a))
            elif state == DeliverableState.APPROVED_WITH_CONDITIONS:
                for a in request.approvers:
                    workflow.record_decision(a, Outcome.APPROVED_WITH_CONDITIONS, "Fix the logo",
                                             seen_sha256=on_screen(a))
            elif state == DeliverableState.CHANGES_REQUESTED:
                workflow.record_decision(request.approvers[0], Outcome.REJECTED, "Wrong colours",
                                         seen_sha256=on_screen(request.approvers[0]))
        db.session.commit()
        assert d.state == state
        return d
    return make


# --- real servers: Redis, an SMTP sink, and RQ workers ------------------------------------

@pytest.fixture(scope="session")
def redis_url() -> str:
    """The local Redis (a database of its own, emptied per test)."""
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        need_server("Redis", f"cannot reach {url}: {exc}")
    return url


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    return redis_url


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives (`messages`,
    `to`, `wait_for`). On cue it answers the next `refuse_next` messages (or all, with
    `refuse_always`) with a temporary failure, waits `delay` seconds before answering,
    refuses the recipients in `refuse_rcpt` at RCPT (550), and hangs up without answering
    the `drop_at`-th DATA it is sent (that message is not accepted). `sessions` counts its
    connections (one per EHLO)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        self.sessions = 0
        self.refuse_next = 0
        self.refuse_always = False
        self.refuse_rcpt: set[str] = set()
        self.drop_at = 0  # 0: never
        self.delay = 0.0
        self.lock = threading.Lock()
        self._data_seen = 0
        sink = self

        class Handler:
            async def handle_EHLO(self, server: Any, session: Any, envelope: Any,
                                  hostname: str, responses: list[str]) -> list[str]:
                session.host_name = hostname
                with sink.lock:
                    sink.sessions += 1
                return responses

            async def handle_RCPT(self, server: Any, session: Any, envelope: Any,
                                  address: str, rcpt_options: list[str]) -> str:
                if address in sink.refuse_rcpt:
                    return "550 5.1.1 No such mailbox here"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                from email import message_from_bytes, policy

                if sink.delay:
                    await asyncio.sleep(sink.delay)
                with sink.lock:
                    sink._data_seen += 1
                    if sink.drop_at and sink._data_seen == sink.drop_at:
                        server.transport.close()  # gone before answering: not accepted
                        return "421 4.3.0 Gone"
                    if sink.refuse_always or sink.refuse_next > 0:
                        sink.refuse_next = max(sink.refuse_next - 1, 0)
                        return "451 4.3.0 Try again later"
                    parsed = message_from_bytes(envelope.content, policy=policy.default)
                    sink.messages.append((list(envelope.rcpt_tos), parsed))
                return "250 OK"

        self.port = _free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def to(self, address: str) -> list[Any]:
        with self.lock:
            return [m for rcpts, m in self.messages if address in rcpts]

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return
            time.sleep(0.05)
        raise AssertionError(f"expected {count} emails, got {len(self.messages)}")

    def stop(self) -> None:
        self.controller.stop()
def as_sent(email: Any) -> Any:
    """An outbox email as it is sent: the send job renders a queued reminder
    (deferred.ensure_rendered); one it has not reached yet is rendered here on a copy, so
    the test writes nothing."""
    from portal.models import OutboxMessage
    from portal.notifications import deferred

    if email.deferred_template is None:
        return email
    copy = OutboxMessage(**{name: getattr(email, name) for name in (
        "id", "idempotency_key", "to_addr", "to_name", "reply_to", "deliverable_id",
        "deferred_template", "deferred_context")})
    deferred.ensure_rendered(copy)
    return copy


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture
def mail(app_config: dict[str, Any], smtp_sink: SmtpSink) -> SmtpSink:
    """Request before `app`: the embedded jobs (no Redis) mail to the real SMTP sink."""
    app_config.update(REDIS_URL="", MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_sink.port)
    return smtp_sink


@pytest.fixture(scope="session")
def seal_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One development seal for the whole session (RSA-3072 takes a moment)."""
    from portal.certificates import create_development_key
    return create_development_key(tmp_path_factory.mktemp("seal"), "Signoff test seal")


@pytest.fixture
def sealed(app_config: dict[str, Any], seal_key: tuple[Path, Path]) -> tuple[Path, Path]:
    """Request before `app`: certificates are issued and sealed with the development key."""
    app_config.update(SIGNING_KEY=str(seal_key[0]), SIGNING_CERT=str(seal_key[1]),
                      SIGNING_PKCS12="")
    return seal_key


@pytest.fixture
def jobs_config(app_config: dict[str, Any], clean_redis: str, smtp_sink: SmtpSink,
                tmp_path) -> dict[str, Any]:
    """The app talks to the real Redis and SMTP sink; request this before `app`."""
    app_config.update({
        "REDIS_URL": clean_redis, "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_sink.port,
        "MAIL_RETRY_INTERVALS": "0,0,0,0", "MAIL_MAX_ATTEMPTS": 5,
    })
    return app_config


@pytest.fixture
def run_worker(app: Flask, jobs_config: dict[str, Any]):
    """Start a real `rq worker` process on the app's database, Redis and SMTP sink."""
    procs: list[subprocess.Popen] = []

    def start(*, burst: bool = True) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "SECRET_KEY": SECRET,
            "REDIS_URL": jobs_config["REDIS_URL"],
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_DEFAULT_SENDER": "review@agency.test",  # a real server needs a real domain
            "MAIL_PORT": str(jobs_config["MAIL_PORT"]),
            "MAIL_RETRY_INTERVALS": jobs_config["MAIL_RETRY_INTERVALS"],
            "MAIL_MAX_ATTEMPTS": str(jobs_config["MAIL_MAX_ATTEMPTS"]),
            "PUBLIC_BASE_URL": jobs_config["PUBLIC_BASE_URL"],
            "FILE_STORE": jobs_config["FILE_STORE"],
            "INSTANCE_PATH": str(Path(jobs_config["FILE_STORE"]).parent / "instance"),
            **{name: str(jobs_config[name]) for name in
               ("FILE_STORAGE_URL", "S3_ENDPOINT_URL", "S3_REGION") if jobs_config.get(name)},
        }
        env.pop("FLASK_DEBUG", None)
        args = [sys.executable, "-m", "rq.cli", "worker", "signoff", "--url",
                jobs_config["REDIS_URL"], "--worker-class", "jobs.worker.AppWorker"]
        if burst:
            args.append("--burst")
        db.session.commit()  # let the worker see what the test wrote
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    def run_burst(timeout: float = 60) -> str:
        proc = start(burst=True)
        output, _ = proc.communicate(timeout=timeout)
        db.session.expire_all()
        assert proc.returncode == 0, output.decode(errors="replace")
        return output.decode(errors="replace")

    start.burst = run_burst  # type: ignore[attr-defined]
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


class QueryCounter:
    """Counts SQL statements sent while it is active (checks for N+1 queries)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_args: Any) -> None:
        self.count += 1


@pytest.fixture
def count_queries(app: Flask):
    """`with count_queries() as counter: …` then read counter.count."""
    from contextlib import contextmanager

    from sqlalchemy import event

    @contextmanager
    def counting():
        counter = QueryCounter()
        event.listen(db.engine, "before_cursor_execute", counter)
        try:
            yield counter
        finally:
            event.remove(db.engine, "before_cursor_execute", counter)
    return counting


class SpyServer:
    """A real HTTP server on loopback that records every GET it is sent (and answers
    with a small PNG): proof that something was, or was not, fetched."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from portal.demo.samples import sample_png

        self.paths: list[str] = []
        spy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                spy.paths.append(self.path)
                body = sample_png()
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> SpyServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
