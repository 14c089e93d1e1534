"""The embedded default under concurrency (issue 11, holes 3 and 4): SQLite reads beside a
writer, and jobs on the in-process background worker, so no request waits on SMTP or a
webhook receiver, and a webhook POST holds no transaction and has one overall deadline.

Loopback only; every wait is bounded, and no assertion is about time (figures are
reported): each proof is structural (a lock held by the test, a server that holds its
answer until the test lets go).
"""
from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url

from portal.database import WriteWhileReading
from portal.extensions import db
from portal.models import (
    DeliverableState,
    OutboxMessage,
    OutboxStatus,
    Role,
    User,
    WebhookDelivery,
)
from portal.notifications import background, webhooks
from portal.notifications.queue import enqueue_unless_waiting
from portal.workflow.links import issue_token
from tests.conftest import PASSWORD
from tests.servers import HoldingSmtpSink, StallingReceiver, Trickler
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


# --- hole 4: no request waits on SMTP -----------------------------------------------------

@pytest.fixture
def holding_sink(app_config: dict[str, Any]):
    """Request before `app`: the embedded default (no REDIS_URL) mailing to this sink."""
    sink = HoldingSmtpSink()
    app_config.update(REDIS_URL="", MAIL_SERVER="127.0.0.1", MAIL_PORT=sink.port)
    yield sink
    sink.release()
    sink.controller.stop()


def test_embedded_a_post_answers_while_smtp_still_holds_its_email(holding_sink, app,
        make_deliverable, staff):
    """Staff resend a link (an email at the commit). The response arrives while the SMTP
    server still holds that email: had the request waited on SMTP it could not answer
    before the test releases the server, which it does only after the answer."""
    d = make_deliverable(S.DELIVERED)  # its invitation goes through: the sink passes
    approver_id, contact, email = (d.open_request.approvers[0].id,
                                   d.open_request.approvers[0].contact.email, staff.email)
    invitations = holding_sink.accepted.count(contact)
    assert invitations == 1

    holding_sink.hold()
    try:
        with served(app) as base:
            sam = Visitor(base, timeout=10)
            _sign_in(sam, email)
            reply = sam.send("POST", f"/approvers/{approver_id}/resend", {})
            assert reply.status == 302, reply  # answered ...
            assert holding_sink.arrived.wait(10), "the email job never reached SMTP"
            assert holding_sink.accepted.count(contact) == invitations  # ... mail still held
    finally:
        holding_sink.release()
    assert background.wait_until_idle(app, timeout=30)

    assert holding_sink.accepted.count(contact) == invitations + 1
    statuses = db.session.scalars(select(OutboxMessage.status)).all()
    assert set(statuses) == {OutboxStatus.SENT}


# --- hole 4: a webhook POST holds no transaction and has one overall deadline -------------

@pytest.fixture
def admin(make_user) -> User:
    return make_user(Role.ADMIN, email="ada@agency.example", name="Ada Admin")


def test_a_trickling_receiver_is_cut_off_by_the_overall_deadline(report, app, admin,
                                                                 make_deliverable):
    app.config["WEBHOOK_TIMEOUT"] = 1
    trickler = Trickler()
    try:
        webhooks.register(admin, trickler.url, "Slow", allow_private=True)
        db.session.commit()
        make_deliverable(S.DELIVERED)  # request.delivered: posted by the background job
        assert trickler.hung_up.wait(10), "the receiver was never cut off"
    finally:
        trickler.stop()
    report(f"a receiver trickling a byte every 0.2 s, WEBHOOK_TIMEOUT=1: cut off after "
           f"{trickler.lasted:.2f} s (it would have taken 5 s)")
    delivery = db.session.scalar(select(WebhookDelivery))
    assert (delivery.status, delivery.attempts) == (OutboxStatus.PENDING, 1)  # retried later
    assert delivery.last_error == "TimeoutError: no complete answer within 1 s in all"
    assert delivery.claimed_until is None


def test_no_transaction_or_row_lock_is_held_while_a_webhook_posts(app, admin):
    """While the receiver holds the POST, another connection locks and updates the
    delivery's row at once (NOWAIT on PostgreSQL; on SQLite the write lock itself), and a
    second attempt leaves it alone: the committed claim, not a lock, keeps others off."""
    receiver = StallingReceiver()
    try:
        endpoint = webhooks.register(admin, receiver.url, "Billing", allow_private=True)
        delivery = WebhookDelivery(endpoint=endpoint, event_id="evt_stall",
                                   event_type="request.viewed",
                                   payload=json.dumps({"id": "evt_stall"}))
        db.session.add(delivery)
        db.session.flush()
        delivery_id = delivery.id
        db.session.commit()  # written without a job: the test hands it over below
        assert enqueue_unless_waiting(webhooks.DELIVER_JOB, delivery_id,
                                      job_id=f"webhook-{delivery_id}")
        assert receiver.arrived.wait(10), "the delivery job never posted"

        row = WebhookDelivery.__table__
        with db.engine.connect() as other:
            claimed = other.execute(select(row.c.claimed_until).where(row.c.id == delivery_id)
                                    .with_for_update(nowait=True)).scalar_one()
            other.execute(update(row).where(row.c.id == delivery_id)
                          .values(last_error="touched while the POST was out"))
            other.commit()
        assert claimed is not None
        assert webhooks.deliver(delivery_id) == OutboxStatus.PENDING  # claimed: left alone
        assert receiver.posts == 1
    finally:
        receiver.release.set()
        assert background.wait_until_idle(app, timeout=30)
        receiver.stop()

    delivered = db.session.get(WebhookDelivery, delivery_id)
    assert (delivered.status, delivered.attempts, delivered.last_status_code) == (
        OutboxStatus.SENT, 1, 204)
    assert delivered.last_error == "" and delivered.claimed_until is None
    assert receiver.posts == 1
