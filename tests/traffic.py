"""Client-side helpers for the tests that talk to the app over real HTTP (load and fault
tests, the scale-out test): a browser with its own cookies, what each request was told,
threads that must all finish in time, the Message-IDs an SMTP sink received, and the
"PostgreSQL only" skip of process tests."""
from __future__ import annotations

import http.cookiejar
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from portal.extensions import db
from tests.conftest import SHOWN_VERSION

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
POSTGRES_ONLY = "load, fault and process tests run once, on PostgreSQL"


def postgres_only(app: Flask) -> None:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip(POSTGRES_ONLY)


@pytest.fixture(scope="session")
def postgresql_only(database_url: str) -> str:
    """List it FIRST: the SQLite half skips before any session-wide server (moto, the
    seal key) starts for it. Process tests whose subject is not the database run once."""
    if not database_url.startswith("postgresql"):
        pytest.skip(POSTGRES_ONLY)
    return database_url


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@contextmanager
def served(app: Flask) -> Iterator[str]:
    """The app behind a threaded werkzeug server on a free loopback port."""
    db.session.commit()  # the server's threads must see what the test wrote
    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)  # thousands of access lines cost time
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        werkzeug_log.setLevel(level)
        db.session.expire_all()


@dataclass
class Reply:
    what: str
    status: int | None  # None: no HTTP answer at all (reset, refused, timed out)
    body: str
    started: float
    elapsed: float
    error: str = ""
    location: str = ""  # where a redirect leads


class Visitor:
    """One client's browser: its own cookie jar, redirects not followed."""

    def __init__(self, base: str, timeout: float = 20.0) -> None:
        self.base = base
        self.timeout = timeout
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect())
        self.csrf = ""
        self.page = ""  # the review page the link led to
        self.shown = ""  # the version SHA-256 that page shows, as its forms send it

    def send(self, method: str, path: str, form: dict[str, str] | None = None,
             what: str = "") -> Reply:
        data = None
        if form is not None:
            data = urllib.parse.urlencode({**form, "csrf_token": self.csrf,
                                           "sha256": self.shown}).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        started = time.monotonic()
        location = ""
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:  # 3xx (not followed), 4xx, 5xx
            try:
                status, body = exc.code, exc.read()
                location = exc.headers.get("Location", "")
            finally:
                exc.close()
        except Exception as exc:  # a dropped connection or a hang must show up, not pass
            return Reply(what or path, None, "", started, time.monotonic() - started, repr(exc))
        return Reply(what or path, status, body.decode(errors="replace"), started,
                     time.monotonic() - started, location=location)

    def open_link(self, token: str) -> None:
        """Open the magic link, land on the review page and keep its CSRF token."""
        first = self.send("GET", f"/r/{token}")
        assert first.status == 303, first
        self.page = urllib.parse.urlsplit(first.location).path
        page = self.send("GET", self.page)
        assert page.status == 200, page
        match = CSRF.search(page.body)
        assert match, "no CSRF token on the review page"
        self.csrf = match.group(1)
        self.shown = SHOWN_VERSION.search(page.body).group(1)

    def comment(self, body: str) -> Reply:
        return self.send("POST", f"{self.page}/comments", {"body": body}, what="comment")

    def approve(self) -> Reply:
        return self.send("POST", f"{self.page}/decision", {"choice": "approve", "confirm": "1"},
                         what="decision")


def run_threads(targets: list[Callable[[], None]], limit: float) -> None:
    """Start every target at once and insist they all finish within `limit` seconds."""
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + limit
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0.1))
    stuck = sum(thread.is_alive() for thread in threads)
    assert not stuck, f"{stuck} client threads still running after {limit:.0f} s"


def message_ids(smtp_sink: Any) -> list[int]:
    with smtp_sink.lock:
        return [int(re.search(r"outbox(\d+)", m["Message-ID"]).group(1))
                for _, m in smtp_sink.messages]
