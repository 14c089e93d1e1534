"""Load and fault tests: the app served over real HTTP, on PostgreSQL, Redis and SMTP.

Every test here is `load`-marked and bounded in time. They run on PostgreSQL only (the
SQLite half is skipped inside each test). Run them with, for example:

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test_load \
        .venv/bin/pytest -q -m load tests/test_load_faults.py

The database restart test comes LAST and restarts the shared local PostgreSQL server, so it
only runs with SIGNOFF_ALLOW_DB_RESTART=1 or under CI=true.
"""
from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    AuditEvent,
    Comment,
    Decision,
    DeliverableState,
    OutboxMessage,
    OutboxStatus,
    RequestStatus,
    ReviewRequest,
)
from portal.notifications import outbox
from portal.workflow.links import issue_token
from tests.conftest import IN_CI

# CSRF, Reply, Visitor and served live in tests/traffic.py; imported here too for the tests
# that still take them from this module (test_embedded, test_policies, the catalogue).
from tests.traffic import (  # noqa: F401
    CSRF,
    NoRedirect,
    Reply,
    Visitor,
    message_ids,
    postgres_only,
    run_threads,
    served,
)

S = DeliverableState
# How long the comment load runs (the issue asks for 30 s). At 30 s the whole file, the
# database restart included, took 85-105 s on a 2-CPU machine; LOAD_SECONDS=10 saves 20 s.
LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", "30"))
DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1
DECIDED = {ApproverStatus.APPROVED, ApproverStatus.APPROVED_WITH_CONDITIONS,
           ApproverStatus.REJECTED}


# --- helpers ----------------------------------------------------------------------------

@pytest.fixture
def generous_limits(app_config):
    """Fifty clients share one address: the per-IP limit must not be what answers."""
    app_config["CLIENT_RATE_LIMIT"] = "1000000 per minute"
    return app_config


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)]


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _approvers_of(make_deliverable, deliverables: int, approvers: int) -> list[Approver]:
    found: list[Approver] = []
    for _ in range(deliverables):
        found.extend(make_deliverable(S.DELIVERED, approvers=approvers).open_request.approvers)
    return found


def _assert_every_email_sent(smtp_sink, *, duplicates_allowed: int) -> tuple[int, int]:
    """Every outbox row is sent, and reached the sink (at most N twice)."""
    db.session.expire_all()
    rows = dict(db.session.execute(select(OutboxMessage.id, OutboxMessage.status)).all())
    unsent = {i: s for i, s in rows.items() if s != OutboxStatus.SENT}
    assert not unsent, f"outbox rows not sent: {unsent}"
    arrived = message_ids(smtp_sink)
    assert set(arrived) == set(rows), (
        f"missing at the sink: {sorted(set(rows) - set(arrived))}; "
        f"unknown: {sorted(set(arrived) - set(rows))}")
    duplicates = len(arrived) - len(set(arrived))
    assert duplicates <= duplicates_allowed, f"{duplicates} emails arrived twice"
    return len(rows), duplicates


def _decide_over(visitors: list[Visitor], window: float, replies: list[Reply],
                 lock: threading.Lock) -> list[Callable[[], None]]:
    """One approval per visitor, spread evenly over `window` seconds from now."""
    start = time.monotonic()

    def client(i: int, visitor: Visitor) -> Callable[[], None]:
        def run() -> None:
            time.sleep(max(start + window * i / len(visitors) - time.monotonic(), 0))
            reply = visitor.approve()
            with lock:
                replies.append(reply)
        return run
    return [client(i, v) for i, v in enumerate(visitors)]


# --- 1. comment load --------------------------------------------------------------------

@pytest.mark.load
def test_fifty_clients_commenting_get_no_errors_and_every_comment_is_stored_once(report,
        generous_limits, app, make_deliverable):
    postgres_only(app)
    approvers = _approvers_of(make_deliverable, deliverables=25, approvers=2)
    tokens = [issue_token(a) for a in approvers]
    assert len(tokens) == 50
    comments_before = _count(Comment)
    prefix = f"load-{uuid.uuid4().hex[:8]}"
    replies: list[Reply] = []
    accepted: list[str] = []
    lock = threading.Lock()

    with served(app) as base:
        visitors = [Visitor(base) for _ in tokens]
        for visitor, token in zip(visitors, tokens, strict=True):
            visitor.open_link(token)
        started = time.monotonic()
        deadline = started + LOAD_SECONDS

        def client(i: int, visitor: Visitor) -> Callable[[], None]:
            def run() -> None:
                n = 0
                while time.monotonic() < deadline:
                    n += 1
                    body = f"{prefix} client {i} comment {n}"
                    posted = visitor.comment(body)
                    # The browser follows the 303 back to the page, which shows the flash.
                    page = visitor.send("GET", visitor.page) if posted.status == 303 else None
                    with lock:
                        replies.append(posted)
                        if posted.status == 303:
                            accepted.append(body)
                        if page is not None:
                            replies.append(page)
            return run

        run_threads([client(i, v) for i, v in enumerate(visitors)], LOAD_SECONDS + 25)
        ran = time.monotonic() - started

    errors = [r for r in replies if r.status not in (200, 303)]
    posts = [r for r in replies if r.what == "comment"]
    latencies = [r.elapsed for r in replies]
    report(f"comment load: {len(visitors)} clients, {ran:.1f} s, {len(replies)} requests "
          f"({len(posts)} comment posts, {len(replies) / ran:.0f} req/s), {len(errors)} errors, "
          f"latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p95 {_percentile(latencies, 0.95) * 1000:.0f} ms, max {max(latencies):.2f} s")
    assert not errors, f"{len(errors)} errors, first ones: {errors[:3]}"
    assert accepted, "no comment went through"

    db.session.expire_all()
    stored = db.session.scalars(select(Comment.body).where(Comment.body.like(f"{prefix} %"))).all()
    report(f"comments accepted {len(accepted)}, stored {len(stored)}")
    assert len(stored) == len(set(stored)), "some comments were stored twice"
    assert set(stored) == set(accepted)
    assert len(stored) == len(accepted) == _count(Comment) - comments_before
    assert _count(AuditEvent, AuditEvent.verb == "comment.posted") == len(stored)


# --- 2. decision race -------------------------------------------------------------------

@pytest.mark.load
def test_a_hundred_concurrent_approvals_by_one_approver_record_exactly_one(report,
        generous_limits, app, make_deliverable):
    postgres_only(app)
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    token = issue_token(approver)
    replies: list[Reply] = []
    lock = threading.Lock()
    barrier = threading.Barrier(100)

    with served(app) as base:
        visitor = Visitor(base, timeout=30)
        visitor.open_link(token)
        cookie = "; ".join(f"{c.name}={c.value}" for c in visitor.jar)
        body = urllib.parse.urlencode(
            {"choice": "approve", "confirm": "1", "csrf_token": visitor.csrf,
             "sha256": visitor.shown}).encode()
        opener = urllib.request.build_opener(NoRedirect())

        def approve() -> None:
            # The same session for all hundred: one approver double-, triple-… clicking.
            request = urllib.request.Request(f"{base}{visitor.page}/decision", data=body,
                                             method="POST", headers={"Cookie": cookie})
            barrier.wait(timeout=20)
            started = time.monotonic()
            try:
                with opener.open(request, timeout=30) as response:
                    status: int | None = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
                exc.close()
            except Exception as exc:
                status = None
                report(f"no answer: {exc!r}")
            with lock:
                replies.append(Reply("decision", status, "", started,
                                     time.monotonic() - started))

        started = time.monotonic()
        run_threads([approve] * 100, 40)
        ran = time.monotonic() - started

    statuses = [r.status for r in replies]
    report(f"decision race: {len(statuses)} posts in {ran:.1f} s: "
          f"{ {s: statuses.count(s) for s in set(statuses)} }, "
          f"slowest {max(r.elapsed for r in replies):.2f} s")
    assert len(statuses) == 100
    assert None not in statuses, "some posts got no HTTP answer"
    assert 500 not in statuses
    assert statuses.count(303) == 1, statuses
    assert statuses.count(409) == 99, statuses
    db.session.expire_all()
    [decision] = db.session.scalars(select(Decision)).all()
    assert decision.approver_id == approver.id
    assert _count(AuditEvent, AuditEvent.verb == "decision.approved") == 1
    assert _count(AuditEvent, AuditEvent.verb == "request.approved") == 1
    assert _count(OutboxMessage, OutboxMessage.idempotency_key == f"decision:{decision.id}") == 1
    db.session.refresh(d)
    assert d.state == S.APPROVED


# --- 3. worker faults -------------------------------------------------------------------

def _assert_decisions_kept(replies: list[Reply], approvers: list[Approver]) -> None:
    failed = [r for r in replies if r.status != 303]
    assert not failed, f"{len(failed)} decisions not accepted, first: {failed[:3]}"
    db.session.expire_all()
    decided = set(db.session.scalars(select(Decision.approver_id)).all())
    assert decided == {a.id for a in approvers}
    assert _count(Decision) == len(approvers)


@pytest.mark.load
def test_redis_outage_under_traffic_loses_no_decision_and_no_email(report,
        generous_limits, jobs_config, app, make_deliverable, run_worker, smtp_sink):
    postgres_only(app)
    deciders = _approvers_of(make_deliverable, 12, 2)[::2]  # the first of each pair decides
    decider_ids = [a.id for a in deciders]
    tokens = [issue_token(a) for a in deciders]
    replies: list[Reply] = []
    lock = threading.Lock()
    window = 6.0

    with served(app) as base:
        visitors = [Visitor(base) for _ in tokens]
        for visitor, token in zip(visitors, tokens, strict=True):
            visitor.open_link(token)
        started = time.monotonic()
        traffic = threading.Thread(target=run_threads, daemon=True,
                                   args=(_decide_over(visitors, window, replies, lock), 30))
        traffic.start()
        # Redis goes away a quarter of the way in and comes back at three quarters,
        # both while decisions are coming in.
        time.sleep(window * 0.25)
        app.config["REDIS_URL"] = DEAD_REDIS
        app.extensions.pop("signoff_queue", None)
        time.sleep(window * 0.5)
        app.config["REDIS_URL"] = jobs_config["REDIS_URL"]
        app.extensions.pop("signoff_queue", None)
        traffic.join(timeout=35)
        assert not traffic.is_alive()
        ran = time.monotonic() - started
    app.extensions.pop("signoff_queue", None)  # a request may have cached the dead one

    slowest = max(r.elapsed for r in replies)
    report(f"redis outage: {len(replies)} decisions in {ran:.1f} s, "
          f"{sum(r.status != 303 for r in replies)} errors, slowest {slowest:.2f} s")
    assert len(replies) == len(visitors)
    assert slowest < 10, "a dead Redis must not hang the page (connect timeout is 1 s)"
    _assert_decisions_kept(replies, [db.session.get(Approver, i) for i in decider_ids])
    assert _count(OutboxMessage, OutboxMessage.idempotency_key.like("decision:%")) == len(tokens)
    # Rows written while Redis was away are in the database but not in the queue.
    relayed = outbox.relay()
    report(f"outbox rows the relay had to queue again after the outage: {relayed}")
    assert relayed > 0, "the outage left nothing for the relay: was Redis really away?"
    run_worker.burst()
    emails, duplicates = _assert_every_email_sent(smtp_sink, duplicates_allowed=0)
    report(f"emails: {emails} rows, {emails + duplicates} arrived, {duplicates} twice")


@pytest.mark.load
def test_worker_killed_under_traffic_loses_no_decision_and_no_email(report,
        generous_limits, jobs_config, app, make_deliverable, run_worker, smtp_sink):
    postgres_only(app)
    deciders = _approvers_of(make_deliverable, 10, 2)[::2]  # the first of each pair decides
    decider_ids = [a.id for a in deciders]
    tokens = [issue_token(a) for a in deciders]
    replies: list[Reply] = []
    lock = threading.Lock()
    window = 5.0
    smtp_sink.delay = 0.15  # slow enough to kill the worker mid-batch

    with served(app) as base:
        visitors = [Visitor(base) for _ in tokens]
        for visitor, token in zip(visitors, tokens, strict=True):
            visitor.open_link(token)
        worker = run_worker(burst=False)
        smtp_sink.wait_for(3, timeout=20)
        started = time.monotonic()
        traffic = threading.Thread(target=run_threads, daemon=True,
                                   args=(_decide_over(visitors, window, replies, lock), 30))
        traffic.start()
        time.sleep(window * 0.4)  # decisions keep coming while it is busy, and after
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        sent_before_kill = len(smtp_sink.messages)
        traffic.join(timeout=35)
        assert not traffic.is_alive()
        ran = time.monotonic() - started

    report(f"killed worker: {len(replies)} decisions in {ran:.1f} s, "
          f"{sum(r.status != 303 for r in replies)} errors, "
          f"{sent_before_kill} emails out before the kill")
    assert len(replies) == len(visitors)
    _assert_decisions_kept(replies, [db.session.get(Approver, i) for i in decider_ids])
    assert _count(OutboxMessage, OutboxMessage.idempotency_key.like("decision:%")) == len(tokens)
    expected = _count(OutboxMessage)
    assert 0 < sent_before_kill < expected, "the worker was not killed mid-batch"

    smtp_sink.delay = 0
    outbox.relay()
    run_worker.burst()
    emails, duplicates = _assert_every_email_sent(smtp_sink, duplicates_allowed=1)
    report(f"emails: {emails} rows, {emails + duplicates} arrived, {duplicates} twice")


# --- 4. database outage (LAST: it restarts the shared PostgreSQL server) -----------------

def _cluster_for(url: str) -> tuple[str, str]:
    """The local cluster (version, name) that serves `url`, found with pg_lsclusters."""
    parsed = make_url(url)
    if parsed.host not in ("127.0.0.1", "localhost", "::1"):
        pytest.skip(f"the database at {parsed.host} is not a local server to restart")
    if os.geteuid() != 0 or not shutil.which("pg_ctlcluster") or not shutil.which("pg_isready"):
        message = "restarting PostgreSQL needs root, pg_ctlcluster and pg_isready"
        if IN_CI:
            pytest.fail(message + " (CI=true requires them)", pytrace=False)
        pytest.skip(message)
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True,
                             timeout=10, check=True).stdout
    for line in listing.splitlines():
        version, name, port, *_ = line.split()
        if int(port) == (parsed.port or 5432):
            return version, name
    pytest.fail(f"no local cluster listens on port {parsed.port}:\n{listing}", pytrace=False)


def _wait_until_ready(host: str, port: int, timeout: float) -> float:
    """Poll pg_isready until the server accepts connections; returns when it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = subprocess.run(["pg_isready", "-q", "-h", host, "-p", str(port)],
                               timeout=10, check=False)
        if ready.returncode == 0:
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"PostgreSQL at {host}:{port} not ready after {timeout:.0f} s")


@pytest.fixture
def production_errors(app_config):
    """Errors answered by the app's own error page, as in production (TESTING re-raises)."""
    app_config["PROPAGATE_EXCEPTIONS"] = False
    return app_config


@pytest.mark.load
def test_database_restart_under_traffic_answers_cleanly_recovers_and_half_writes_nothing(report,
        generous_limits, production_errors, jobs_config, app, make_deliverable):
    postgres_only(app)
    if not (os.environ.get("SIGNOFF_ALLOW_DB_RESTART") == "1" or IN_CI):
        pytest.skip("restarts the shared PostgreSQL server: set SIGNOFF_ALLOW_DB_RESTART=1 "
                    "(or CI=true) to run it")
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    version, cluster = _cluster_for(app.config["SQLALCHEMY_DATABASE_URI"])
    host, port = url.host or "127.0.0.1", url.port or 5432

    # 20 requests with two approvers each: on even ones both approve (which closes the
    # request), on odd ones only the first does while the second keeps commenting.
    approvers = _approvers_of(make_deliverable, deliverables=20, approvers=2)
    deciding = {a.id for n, a in enumerate(approvers) if n % 4 != 3}
    tokens = [(a.id, issue_token(a)) for a in approvers]
    prefix = f"outage-{uuid.uuid4().hex[:8]}"
    replies: list[Reply] = []
    comments_sent: dict[str, int | None] = {}
    decision_replies: dict[int, list[Reply]] = {}
    refused_comments: set[int] = set()  # approvers told 409 on a comment
    lock = threading.Lock()
    stop = threading.Event()
    window = 12.0  # decisions are spread over this, across the outage

    try:
        with served(app) as base:
            visitors = [(aid, Visitor(base, timeout=20)) for aid, _ in tokens]
            for (_, visitor), (_, token) in zip(visitors, tokens, strict=True):
                visitor.open_link(token)
            started = time.monotonic()

            def client(i: int, approver_id: int, visitor: Visitor) -> Callable[[], None]:
                decide_at = started + window * i / len(visitors)

                def run() -> None:
                    decided, n = approver_id not in deciding, 0
                    while not stop.is_set():
                        if not decided and time.monotonic() >= decide_at:
                            reply = visitor.approve()
                            decided = reply.status in (303, 409)
                            with lock:
                                replies.append(reply)
                                decision_replies.setdefault(approver_id, []).append(reply)
                        else:
                            n += 1
                            body = f"{prefix} approver {approver_id} comment {n}"
                            reply = visitor.comment(body)
                            with lock:
                                replies.append(reply)
                                comments_sent[body] = reply.status
                                if reply.status == 409:
                                    refused_comments.add(approver_id)
                        if reply.status != 303:
                            time.sleep(0.2)  # a person pauses before trying again
                        time.sleep(0.05)
                return run

            threads = [threading.Thread(target=client(i, aid, v), daemon=True)
                       for i, (aid, v) in enumerate(visitors)]
            for thread in threads:
                thread.start()
            time.sleep(3)
            restart_at = time.monotonic()
            restart = subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "restart"],
                capture_output=True, text=True, timeout=60, check=False)
            ready_at = _wait_until_ready(host, port, 30)
            # Keep the traffic going well past the restart and the last scheduled decision.
            time.sleep(max(started + window + 2 - time.monotonic(), 6))
            stop.set()
            for thread in threads:
                thread.join(timeout=max(25 - (time.monotonic() - ready_at), 1))
            assert not any(t.is_alive() for t in threads), "client threads hung"
            ran = time.monotonic() - started
    finally:
        stop.set()
        _wait_until_ready(host, port, 60)  # later tests (and other users) need it back

    assert restart.returncode == 0, restart.stdout + restart.stderr

    def in_outage(r: Reply) -> bool:  # overlaps the restart, or started just after it
        return r.started <= ready_at + 1 and r.started + r.elapsed >= restart_at - 0.5

    during = [r for r in replies if in_outage(r)]
    after = [r for r in replies if r.started >= ready_at + 1]
    failed = [r for r in replies if r.status not in (200, 303)]
    statuses = [r.status for r in replies]
    report(f"database restart: {len(replies)} requests in {ran:.1f} s from {len(visitors)} "
          f"clients; restart took {ready_at - restart_at:.1f} s until pg_isready; "
          f"answers { {s: statuses.count(s) for s in set(statuses)} }; "
          f"{len(during)} around the outage, {len(after)} after it; "
          f"slowest {max(r.elapsed for r in replies):.2f} s")

    # While it was down: answers, not hangs, and the app's own error page.
    no_answer = [r for r in replies if r.status is None]
    assert not no_answer, f"{len(no_answer)} requests got no HTTP answer: {no_answer[:3]}"
    slow = [r for r in replies if r.elapsed > 15]
    assert not slow, f"{len(slow)} requests took over 15 s: {slow[:3]}"
    unexpected = [r for r in failed if r.status not in (409, 500, 503)]
    assert not unexpected, unexpected[:3]
    bare = [r for r in failed if r.status == 500 and "Something went wrong" not in r.body]
    assert not bare, f"{len(bare)} 500s without the app's error page: {bare[0].body[:300]}"
    outside = [r for r in failed if r.status in (500, 503) and not in_outage(r)]
    assert not outside, f"{len(outside)} server errors outside the outage: {outside[:3]}"

    # Full recovery: everything sent a second after pg_isready went through.
    assert after, "no traffic after the restart"
    assert all(r.status in (200, 303, 409) for r in after), [
        r for r in after if r.status not in (200, 303, 409)][:3]

    # Nothing lost, nothing half-written.
    db.session.expire_all()
    stored = db.session.scalars(select(Comment.body).where(Comment.body.like(f"{prefix} %"))).all()
    assert len(stored) == len(set(stored)), "a comment was stored twice"
    accepted = {b for b, s in comments_sent.items() if s == 303}
    assert accepted <= set(stored), f"acknowledged comments lost: {accepted - set(stored)}"
    assert set(stored) <= set(comments_sent)
    in_doubt = set(stored) - accepted
    comment_events = set(db.session.scalars(select(AuditEvent.subject_id).where(
        AuditEvent.verb == "comment.posted")).all())
    comment_ids = set(db.session.scalars(select(Comment.id).where(
        Comment.author_contact_id.is_not(None))).all())
    assert comment_ids == comment_events, "a comment without its audit event, or the reverse"

    decisions = db.session.scalars(select(Decision)).all()
    by_approver = {d.approver_id: d for d in decisions}
    assert len(by_approver) == len(decisions), "an approver decided twice"
    decision_events = db.session.execute(select(AuditEvent.subject_id, AuditEvent.verb).where(
        AuditEvent.subject_type == "decisions")).all()
    assert sorted(decision_events) == sorted((d.id, f"decision.{d.outcome.value}")
                                             for d in decisions)
    for approver in db.session.scalars(select(Approver)).all():
        decision = by_approver.get(approver.id)
        if approver.status in DECIDED:
            assert decision is not None, f"approver {approver.id} decided without a decision"
            assert approver.status.value == decision.outcome.value
        else:
            assert decision is None, f"decision {decision.id} but approver {approver.status}"
        notices = _count(OutboxMessage, OutboxMessage.idempotency_key == f"decision:{decision.id}"
                         ) if decision else 0
        assert notices == (1 if decision else 0)
    acknowledged = {aid for aid, rs in decision_replies.items() if 303 in {r.status for r in rs}}
    assert acknowledged <= set(by_approver), "an acknowledged decision was lost"
    unanswered = deciding - set(by_approver)
    assert not unanswered, f"approvers whose decision never got through: {unanswered}"
    for request in db.session.scalars(select(ReviewRequest)).all():
        everyone = all(a.status == ApproverStatus.APPROVED for a in request.approvers)
        assert (request.status == RequestStatus.APPROVED) == everyone, request.id
        closed = _count(AuditEvent, AuditEvent.verb == "request.approved",
                        AuditEvent.subject_id == request.id)
        assert closed == (1 if everyone else 0)
        deliverable = request.version.deliverable
        assert (deliverable.state == S.APPROVED) == everyone
        assert (request.version.locked_at is not None) == everyone
    for approver_id in refused_comments:  # a comment is refused only once the request closed
        request = db.session.get(Approver, approver_id).request
        assert request.status != RequestStatus.OPEN, f"comment refused on open {request.id}"
    late_409 = [aid for aid, rs in decision_replies.items()
                if rs[-1].status == 409 and 303 not in {r.status for r in rs}]
    report(f"comments: {len(comments_sent)} sent, {len(accepted)} accepted, {len(stored)} "
          f"stored ({len(in_doubt)} stored though the reply was an error); decisions "
          f"{len(decisions)} of {len(deciding)}, {len(late_409)} confirmed only by a 409")

    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
