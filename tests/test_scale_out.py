"""Scale-out: two gunicorn servers, two RQ workers and two `rq cron` schedulers on one
PostgreSQL and one Redis, with a real SMTP sink and a webhook receiver on loopback, and
the files on S3 (moto's server, tests/s3_server.py).

Traffic goes through both servers (deliveries over the API, comments, decisions, link
renewals) while the schedulers sweep every 2 s (SIGNOFF_CRON_INTERVAL); reminders fall
due because the test moves `next_reminder_at` back in the database. Every effect must
happen once: each reminder, each email (by its Message-ID, which carries the outbox row
and so its idempotency key), each webhook delivery (by its event id) and each
certificate. Then one server, one worker and one scheduler are SIGKILLed mid-run (each
with its children), the worker while its work horse is inside an SMTP send: worker-a mails
through a sink of its own that holds each message at DATA, and worker-b is paused until
worker-a's horse is caught there. Nothing acknowledged is lost, nothing is doubled (a
repeat is allowed only for the rows whose leases the test freed after the kill), RQ's
failed-job registry holds no job but the killed one, no process logged a traceback, and
the survivors finish the work.

PostgreSQL only (the SQLite half skips before any server starts), `load`-marked, loopback
only, and one time budget for the whole test:

    CI=true TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test_scale \\
        TEST_REDIS_URL=redis://127.0.0.1:6379/4 .venv/bin/pytest -q -m load tests/test_scale_out.py
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis
from rq import Queue
from sqlalchemy import select, update

from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    Certificate,
    Comment,
    Decision,
    OutboxMessage,
    OutboxStatus,
    Reminder,
    RequestStatus,
    ReviewRequest,
    Role,
    WebhookDelivery,
    utcnow,
)
from portal.models import DeliverableState as State
from portal.notifications import webhooks
from portal.notifications.delivery import LEASE
from portal.notifications.queue import QUEUE_NAME
from portal.people.api_tokens import create_token
from portal.workflow.links import issue_token
from tests.fleet import SWEEP_SECONDS, Fleet, Traffic, deliver, fleet_env
from tests.s3_server import bucket_keys, s3_server, s3_storage_fixture  # noqa: F401
from tests.servers import HoldingSmtpSink, RecordingReceiver
from tests.traffic import Visitor, message_ids, postgresql_only, run_threads  # noqa: F401

BUDGET_SECONDS = 240  # the whole test, servers' start to the last check
DRAIN_SECONDS = 90  # the most any one wait for the workers may take (within the budget)


class Budget:
    """One deadline for the whole test: each wait gets what is left of it, at most."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self, at_most: float = DRAIN_SECONDS) -> float:
        left = self.deadline - time.monotonic()
        assert left > 0, f"the test ran past its budget of {BUDGET_SECONDS} s"
        return min(left, at_most)


def _fresh() -> None:
    """End the test's own transaction, so the next read sees what the fleet committed."""
    db.session.commit()
    db.session.expire_all()


def _wait(what: str, done: Callable[[], bool], budget: Budget) -> None:
    timeout = budget.left()
    deadline = time.monotonic() + timeout
    while True:
        _fresh()
        if done():
            return
        assert time.monotonic() < deadline, f"not done after {timeout:.0f} s: {what}"
        time.sleep(0.5)


def _invited() -> list[int]:
    return list(db.session.scalars(select(Approver.id).where(
        Approver.status == ApproverStatus.INVITED)).all())


def _make_reminders_due(approver_ids: list[int]) -> None:
    """Fast-forward: the next reminder of each was due a minute ago."""
    db.session.execute(update(Approver).where(Approver.id.in_(approver_ids))
                       .values(next_reminder_at=utcnow() - timedelta(minutes=1)))
    _fresh()


def _reminder_numbers() -> Counter:
    return Counter(db.session.execute(select(Reminder.approver_id, Reminder.number)).all())


def _drained() -> bool:
    open_rows = db.session.scalar(select(OutboxMessage.id).where(
        OutboxMessage.status == OutboxStatus.PENDING).limit(1))
    open_hooks = db.session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.status == OutboxStatus.PENDING).limit(1))
    approved = db.session.scalars(select(ReviewRequest.id).where(
        ReviewRequest.status == RequestStatus.APPROVED)).all()
    issued = db.session.scalars(select(Certificate.request_id)).all()
    return open_rows is None and open_hooks is None and set(approved) == set(issued)


def _expire_leases_taken_before(moment: Any) -> tuple[set[int], set[str]]:
    """Rows claimed by the killed work horse stay claimed for LEASE (5 minutes); as with
    reminders, time is moved in the database, and only for claims older than the kill.
    Returns the outbox ids and webhook event ids it freed."""
    freed_at = utcnow() - timedelta(seconds=1)
    claimed_before = moment + LEASE
    emails = set(db.session.scalars(update(OutboxMessage).where(
        OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.claimed_until.is_not(None),
        OutboxMessage.claimed_until <= claimed_before).values(claimed_until=freed_at)
        .returning(OutboxMessage.id)).all())
    events = set(db.session.scalars(update(WebhookDelivery).where(
        WebhookDelivery.status == OutboxStatus.PENDING,
        WebhookDelivery.claimed_until.is_not(None),
        WebhookDelivery.claimed_until <= claimed_before).values(claimed_until=freed_at)
        .returning(WebhookDelivery.event_id)).all())
    _fresh()
    return emails, events


def _repeated(values: list[Any]) -> set[Any]:
    return {value for value, times in Counter(values).items() if times > 1}


def _assert_exactly_once(sinks: list[Any], receiver: RecordingReceiver, *,
                         may_repeat: tuple[set[int], set[str]] = (set(), set()),
                         ) -> dict[str, int]:
    """Every effect the database holds happened once at the far end. A repeat of the same
    Message-ID or event id (which receivers drop) is allowed only for a row in `may_repeat`:
    one whose lease was freed after its work horse was killed mid-send, and only twice."""
    rows = dict(db.session.execute(select(OutboxMessage.id, OutboxMessage.status)).all())
    assert set(rows.values()) <= {OutboxStatus.SENT, OutboxStatus.SKIPPED}, Counter(
        rows.values())
    sent = {i for i, status in rows.items() if status == OutboxStatus.SENT}
    arrived = [i for sink in sinks for i in message_ids(sink)]
    assert set(arrived) == sent, (f"missing at the sink: {sorted(sent - set(arrived))}; "
                                  f"not to be sent: {sorted(set(arrived) - sent)}")
    events = dict(db.session.execute(select(WebhookDelivery.event_id,
                                            WebhookDelivery.status)).all())
    assert set(events.values()) <= {OutboxStatus.SENT}, Counter(events.values())
    received = receiver.event_ids()
    assert set(received) == set(events)
    emails_free, events_free = may_repeat
    assert _repeated(arrived) <= emails_free, (_repeated(arrived), emails_free)
    assert _repeated(received) <= events_free, (_repeated(received), events_free)
    assert max(Counter(arrived + received).values(), default=0) <= 2, "an effect thrice"

    # Each reminder row has its one email; each approved request its one certificate,
    # announced once.
    keys = set(db.session.scalars(select(OutboxMessage.idempotency_key)).all())
    reminders = _reminder_numbers()
    assert set(reminders.values()) <= {1}
    assert {f"reminder:{a}:{n}" for a, n in reminders} <= keys
    assert len([k for k in keys if k.startswith("reminder:")]) == len(reminders)
    issued = Counter(db.session.scalars(select(Certificate.request_id)).all())
    approved = db.session.scalars(select(ReviewRequest.id).where(
        ReviewRequest.status == RequestStatus.APPROVED)).all()
    assert issued == Counter(approved), "a certificate missing or issued twice"
    announced = db.session.scalars(select(WebhookDelivery.payload).where(
        WebhookDelivery.event_type == "certificate.issued")).all()
    assert len(announced) == len(issued)
    return {"emails": len(sent), "emails_arrived": len(arrived), "reminders": len(reminders),
            "webhooks": len(events), "webhooks_arrived": len(received),
            "repeats": len(arrived) - len(set(arrived)) + len(received) - len(set(received)),
            "certificates": len(issued)}


def _assert_files_on_s3(app: Any, s3_storage: dict[str, str]) -> None:
    """Every certificate the workers sealed is in the bucket, and `flask storage verify`
    finds each stored version, render and certificate whole."""
    in_bucket = set(bucket_keys(s3_storage["endpoint"], s3_storage["bucket"]))
    prefix = s3_storage["prefix"]
    for key in db.session.scalars(select(Certificate.storage_key)).all():
        assert f"{prefix}/{key[:2]}/{key[2:4]}/{key}" in in_bucket, key
    verified = app.test_cli_runner().invoke(args=["storage", "verify"])
    assert verified.exit_code == 0, verified.output


def _assert_nothing_acknowledged_was_lost(traffic: Traffic, prefix: str) -> int:
    stored = db.session.scalars(select(Comment.body).where(
        Comment.body.like(f"{prefix} %"))).all()
    assert len(stored) == len(set(stored)), "a comment was stored twice"
    acknowledged = {body for body, status in traffic.comments.items() if status == 303}
    assert acknowledged <= set(stored), f"acknowledged comments lost: {acknowledged - set(stored)}"
    assert set(stored) <= set(traffic.comments)
    decided = Counter(db.session.scalars(select(Decision.approver_id)).all())
    assert set(decided.values()) == {1}, "an approver decided twice"
    for approver_id, statuses in traffic.decisions.items():
        assert statuses[-1] == 303 or statuses == [None, 409], (approver_id, statuses)
        assert approver_id in decided, f"the decision of approver {approver_id} was lost"
    return len(stored)


def _failed_jobs(redis_url: str) -> list[str]:
    queue = Queue(QUEUE_NAME, connection=redis.Redis.from_url(redis_url))
    return queue.failed_job_registry.get_job_ids()


@pytest.mark.load
@pytest.mark.usefixtures("postgresql_only")  # first: SQLite skips before moto and the seal key
def test_two_of_everything_do_each_thing_once_and_survive_a_kill_of_one_of_each(report,
        s3_storage, sealed, jobs_config, app, make_deliverable, make_user, staff, smtp_sink,
        tmp_path):
    budget = Budget(BUDGET_SECONDS)
    receiver = RecordingReceiver()
    held_sink = HoldingSmtpSink()  # worker-a's relay: it can hold a send at DATA
    sinks = [held_sink, smtp_sink]
    webhooks.register(make_user(Role.ADMIN), receiver.url, "scale-out", allow_private=True)
    _token, api_secret = create_token(staff, "scale-out", ["read", "write"], None, utcnow())
    presented = [make_deliverable(State.DELIVERED, approvers=2) for _ in range(8)]
    ready = [make_deliverable(State.READY) for _ in range(4)]
    _fresh()
    redis_url = jobs_config["REDIS_URL"]
    fleet = Fleet(fleet_env(app.config, redis_url, smtp_sink.port), tmp_path)
    traffic, prefix = Traffic(), f"scale-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    try:
        servers = [fleet.web("web-a"), fleet.web("web-b")]
        fleet.worker("worker-a", held_sink.port)
        fleet.worker("worker-b", smtp_sink.port)
        for name in ("cron-a", "cron-b"):
            fleet.scheduler(name)
        for server in servers:
            server.wait_until_answering("/login", timeout=budget.left())
        bases = [server.base for server in servers]
        phases = {"started": time.monotonic() - started}

        # 1. Deliveries over the API, then every approver opens their link, comments,
        # and some ask for a fresh link: both servers take turns.
        for n, d in enumerate(ready):
            contacts = [c.id for c in d.project.client.contacts]
            reply = traffic.note(deliver(bases[n % 2], api_secret, d.id, contacts))
            assert reply.status == 201, reply
        _fresh()
        groups = [[a.id for a in d.open_request.approvers] for d in presented + ready]
        visitors = {aid: Visitor(bases[aid % 2]) for group in groups for aid in group}
        tokens = {aid: issue_token(db.session.get(Approver, aid)) for aid in visitors}

        def first_visit(aid: int) -> Callable[[], None]:
            def run() -> None:
                visitors[aid].open_link(tokens[aid])
                traffic.comment(visitors[aid], f"{prefix} approver {aid} first look")
                if aid % 3 == 0:
                    traffic.note(visitors[aid].send("POST", f"{visitors[aid].page}/renew", {},
                                                    what="renewal"))
            return run
        run_threads([first_visit(aid) for aid in visitors], budget.left(60))
        phases["visits"] = time.monotonic() - started

        # 2. Reminders fall due for everyone still invited; two schedulers sweep every
        # 2 s, and each approver gets reminder 1 once, however many sweeps run.
        first_round = _invited()
        _make_reminders_due(first_round)
        _wait("reminder 1 for everyone", lambda: set(_reminder_numbers()) == {
            (aid, 1) for aid in first_round}, budget)
        time.sleep(3 * SWEEP_SECONDS)  # more sweeps, to be seen not to repeat anything
        phases["reminders"] = time.monotonic() - started

        # 3. Both approvers of four deliverables approve (certificates follow).
        deciders = [aid for group in groups[:4] for aid in group]
        run_threads([lambda aid=aid: traffic.decide(visitors[aid], aid, None)
                     for aid in deciders], budget.left(60))
        _wait("outbox, webhooks and certificates done", _drained, budget)
        before = _assert_exactly_once(sinks, receiver)
        assert before["repeats"] == 0
        phases["decided"] = time.monotonic() - started
        report(f"before the kills: {len(traffic.replies)} requests, {before}")

        # 4. Under traffic, kill one of each; reminder 2 falls due for two deliverables
        # nobody decides on, while the rest of the approvers comment and approve. The
        # worker dies while its horse is inside a send: its relay holds mail at DATA, and
        # worker-b takes no job until then (a horse it runs already finishes).
        waiting = [aid for group in groups[6:8] for aid in group]
        deciding = [aid for group in groups[4:6] + groups[8:] for aid in group]
        window, survivor = 8.0, bases[1]
        start = time.monotonic()

        def late_visit(n: int, aid: int) -> Callable[[], None]:
            def run() -> None:
                time.sleep(max(start + window * n / len(visitors) - time.monotonic(), 0))
                traffic.comment(visitors[aid], f"{prefix} approver {aid} second look")
                if visitors[aid].base != survivor and traffic.comments.get(
                        f"{prefix} approver {aid} second look") is None:
                    visitors[aid].base = survivor  # the balancer stops sending it there
                if aid in deciding:
                    traffic.decide(visitors[aid], aid, survivor)
            return run
        runner = threading.Thread(target=run_threads, daemon=True, args=(
            [late_visit(n, aid) for n, aid in enumerate(waiting + deciding)], 60))
        held_sink.hold()
        try:
            with fleet.paused("worker-b"):
                _make_reminders_due(waiting)
                runner.start()
                caught_sending = held_sink.arrived.wait(timeout=budget.left(60))
                assert caught_sending, "worker-a's horse sent no mail in time"
                killed_job = fleet.current_job("worker-a")
                killed_at = utcnow()
                processes_killed = sum(fleet.kill(name) for name in ("web-a", "worker-a",
                                                                     "cron-a"))
        finally:
            held_sink.release()  # the message it held is accepted: the far end has it
        runner.join(timeout=budget.left(65))
        assert not runner.is_alive()
        time.sleep(3)  # what worker-b's horse claimed before the kill is done by now
        freed = _expire_leases_taken_before(killed_at)
        assert freed[0], "the killed horse held no outbox row"
        phases["killed"] = time.monotonic() - started

        # 5. The survivors finish: reminder 2 once each, every email, webhook and
        # certificate, and nothing anyone was told is recorded went missing.
        _wait("reminder 2 for the waiting", lambda: {(aid, 2) for aid in waiting}
              <= set(_reminder_numbers()), budget)
        _wait("outbox, webhooks and certificates done after the kills", _drained, budget)
        phases["drained"] = time.monotonic() - started
        time.sleep(2 * SWEEP_SECONDS)  # more sweeps, to be seen not to repeat anything
        _fresh()
        comments = _assert_nothing_acknowledged_was_lost(traffic, prefix)
        after = _assert_exactly_once(sinks, receiver, may_repeat=freed)
        _assert_files_on_s3(app, s3_storage)
        assert {a for a, n in _reminder_numbers() if n == 2} == set(waiting)
        for name in ("web-b", "worker-b", "cron-b"):
            assert fleet.procs[name].poll() is None, fleet.log(name)
        assert Visitor(survivor).send("GET", "/login").status == 200
        # Nothing failed quietly: no job in RQ's failed registry but the one the kill cut
        # off (if a survivor's clean-up got to it), and no process logged a traceback.
        assert set(_failed_jobs(redis_url)) <= {killed_job}, _failed_jobs(redis_url)
        assert not fleet.tracebacks(), fleet.tracebacks()
    finally:
        fleet.stop()
        receiver.stop()
        held_sink.stop()
    ran = time.monotonic() - started
    statuses = Counter(r.status for r in traffic.replies)
    report(f"scale-out: {len(traffic.replies)} requests in {ran:.0f} s {dict(statuses)}, "
           f"{comments} comments, {sum(1 for s in traffic.decisions.values() if s)} decisions, "
           f"{after['emails']} emails ({after['emails_arrived']} arrivals), "
           f"{after['reminders']} reminders, {after['webhooks']} webhook deliveries "
           f"({after['webhooks_arrived']} arrivals), {after['certificates']} certificates, "
           f"kills {fleet.kills} ({processes_killed} processes; worker-a's horse caught "
           f"at DATA in {killed_job or 'a job'}), leases freed by hand: {len(freed[0])} "
           f"emails, {len(freed[1])} webhooks; repeats {after['repeats']}; "
           f"seconds from the start: { {k: round(v) for k, v in phases.items()} }")
