"""The embedded default under concurrency (issue 11, hole 3): SQLite reads beside a writer.

Loopback only; every wait is bounded, and no assertion is about time (figures are
reported): each proof is structural (a lock held by the test, a server that holds its
answer until the test lets go).
"""
from __future__ import annotations

import sqlite3
import time
import urllib.error
import urllib.request

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from portal.database import WriteWhileReading
from portal.extensions import db
from portal.models import DeliverableState, User
from portal.workflow.links import issue_token
from tests.conftest import PASSWORD
from tests.test_load_faults import CSRF, Reply, Visitor, served

S = DeliverableState


def _sign_in(visitor: Visitor, email: str) -> None:
    page = visitor.send("GET", "/login")
    visitor.csrf = CSRF.search(page.body).group(1)
    reply = visitor.send("POST", "/login", {"email": email, "password": PASSWORD})
    assert reply.status == 302, reply
    # Signing in starts a fresh session, with a CSRF token of its own.
    visitor.csrf = CSRF.search(visitor.send("GET", "/clients").body).group(1)


def _fetch(opener: urllib.request.OpenerDirector, url: str) -> Reply:
    started = time.monotonic()
    try:
        with opener.open(url, timeout=20) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
        exc.close()
    return Reply(url, status, body.decode(errors="replace"), started,
                 time.monotonic() - started)


# --- hole 3: SQLite reads never wait for a writer -----------------------------------------

def test_sqlite_pages_answer_while_another_connection_holds_the_write_lock(report, app,
        make_deliverable, staff):
    """WAL, and read-only transactions for GET: a writer that keeps the write lock (here a
    second connection, held for as long as the test likes, past busy_timeout if it must)
    delays no page, and the pages show the last commit, not the write under way."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "sqlite":
        pytest.skip("the embedded database's concurrency is SQLite's")
    d = make_deliverable(S.DELIVERED)
    deliverable_id, email = d.id, staff.email
    token = issue_token(d.open_request.approvers[0])
    assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"

    with served(app) as base:  # commits: from here the test's session holds nothing
        sam = Visitor(base)
        _sign_in(sam, email)
        client = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with client.open(f"{base}/r/{token}", timeout=20) as landed:  # follows to the page
            review_url = landed.url
        writer = sqlite3.connect(url.database, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")  # the write lock, until we let go
            writer.execute("UPDATE deliverables SET title = 'Being rewritten' WHERE id = ?",
                           (deliverable_id,))
            held = time.monotonic()
            replies = [sam.send("GET", "/"), sam.send("GET", f"/deliverables/{deliverable_id}"),
                       sam.send("GET", "/deliverables"), _fetch(client, review_url),
                       Visitor(base).send("GET", "/login")]
            held = time.monotonic() - held
        finally:
            writer.execute("ROLLBACK")
            writer.close()

    report(f"{len(replies)} pages while another connection held the write lock: "
           f"{[r.status for r in replies]}, slowest {max(r.elapsed for r in replies):.3f} s "
           f"(busy_timeout is 5 s), lock held {held:.2f} s")
    assert [r.status for r in replies] == [200] * len(replies), replies
    assert all("Homepage v3" in r.body and "Being rewritten" not in r.body
               for r in replies[1:4])


def test_a_get_request_that_writes_is_refused_on_every_backend(app, staff):
    """GET and HEAD transactions begin read-only (on SQLite deferred, without the write
    lock), so a write there is a bug: it fails at once, not only under contention."""
    with app.test_request_context("/", method="GET"):
        app.preprocess_request()  # the before-request hooks: the read-only declaration
        staff.name = "Written by a GET"
        with pytest.raises(WriteWhileReading):
            db.session.flush()
        db.session.rollback()
    staff.name = "Written after the GET"  # its end lifted the declaration
    db.session.commit()
    assert db.session.scalar(select(User.name).where(User.id == staff.id)) == staff.name
