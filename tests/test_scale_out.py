"""Scale-out: two gunicorn servers, two RQ workers and two `rq cron` schedulers on one
PostgreSQL and one Redis, with a real SMTP sink and a webhook receiver on loopback, and
the files on S3 (moto's server, tests/s3_server.py).

Traffic goes through both servers (deliveries over the API, comments, decisions, link
renewals) while the schedulers sweep every 2 s (SIGNOFF_CRON_INTERVAL); reminders fall
due because the test moves `next_reminder_at` back in the database. Every effect must
happen once: each reminder, each email (by its Message-ID, which carries the outbox row
and so its idempotency key), each webhook delivery (by its event id) and each
certificate. Then one server, one worker and one scheduler are SIGKILLed mid-run (each
with its children): nothing acknowledged is lost, nothing is doubled, and the survivors
finish the work.

PostgreSQL only, `load`-marked, loopback only, every wait bounded:

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
from portal.notifications import webhooks
from portal.notifications.delivery import LEASE
from portal.people.api_tokens import create_token
from portal.workflow.links import issue_token
from tests.fleet import SWEEP_SECONDS, Fleet, Traffic, WebhookReceiver, deliver, fleet_env
from tests.s3_server import bucket_keys, s3_server, s3_storage_fixture  # noqa: F401
from tests.test_load_faults import S as State
from tests.test_load_faults import Visitor, _message_ids, _postgres_only, _run_threads

DRAIN_SECONDS = 90  # the most any wait for the workers may take


def _fresh() -> None:
    """End the test's own transaction, so the next read sees what the fleet committed."""
    db.session.commit()
    db.session.expire_all()


def _wait(what: str, done: Callable[[], bool], timeout: float = DRAIN_SECONDS) -> None:
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


def _drained(receiver: WebhookReceiver) -> bool:
    open_rows = db.session.scalar(select(OutboxMessage.id).where(
        OutboxMessage.status == OutboxStatus.PENDING).limit(1))
    open_hooks = db.session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.status == OutboxStatus.PENDING).limit(1))
    approved = db.session.scalars(select(ReviewRequest.id).where(
        ReviewRequest.status == RequestStatus.APPROVED)).all()
    issued = db.session.scalars(select(Certificate.request_id)).all()
    return open_rows is None and open_hooks is None and set(approved) == set(issued)


def _expire_leases_taken_before(moment: Any) -> int:
    """Rows claimed by the killed work horse stay claimed for LEASE (5 minutes); as with
    reminders, time is moved in the database, and only for claims older than the kill."""
    moved = 0
    for model in (OutboxMessage, WebhookDelivery):
        moved += db.session.execute(update(model).where(
            model.status == OutboxStatus.PENDING, model.claimed_until.is_not(None),
            model.claimed_until <= moment + LEASE).values(
            claimed_until=utcnow() - timedelta(seconds=1))).rowcount
    _fresh()
    return moved


def _assert_exactly_once(smtp_sink: Any, receiver: WebhookReceiver, *,
                         repeats_allowed: int) -> dict[str, int]:
    """Every effect the database holds happened once at the far end (a repeat of the same
    Message-ID or event id, which receivers drop, only after a work horse was killed)."""
    rows = dict(db.session.execute(select(OutboxMessage.id, OutboxMessage.status)).all())
    assert set(rows.values()) <= {OutboxStatus.SENT, OutboxStatus.SKIPPED}, Counter(
        rows.values())
    sent = {i for i, status in rows.items() if status == OutboxStatus.SENT}
    arrived = _message_ids(smtp_sink)
    assert set(arrived) == sent, (f"missing at the sink: {sorted(sent - set(arrived))}; "
                                  f"not to be sent: {sorted(set(arrived) - sent)}")
    events = dict(db.session.execute(select(WebhookDelivery.event_id,
                                            WebhookDelivery.status)).all())
    assert set(events.values()) <= {OutboxStatus.SENT}, Counter(events.values())
    with receiver.lock:
        received = list(receiver.event_ids)
    assert set(received) == set(events)
    email_repeats = len(arrived) - len(set(arrived))
    hook_repeats = len(received) - len(set(received))
    assert email_repeats + hook_repeats <= repeats_allowed, (email_repeats, hook_repeats)

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


@pytest.mark.load
def test_two_of_everything_do_each_thing_once_and_survive_a_kill_of_one_of_each(report,
        s3_storage, sealed, jobs_config, app, make_deliverable, make_user, staff, smtp_sink,
        tmp_path):
    _postgres_only(app)
    receiver = WebhookReceiver()
    webhooks.register(make_user(Role.ADMIN), receiver.url, "scale-out", allow_private=True)
    _token, api_secret = create_token(staff, "scale-out", ["read", "write"], None, utcnow())
    presented = [make_deliverable(State.DELIVERED, approvers=2) for _ in range(8)]
    ready = [make_deliverable(State.READY) for _ in range(4)]
    _fresh()
    fleet = Fleet(fleet_env(app.config, jobs_config["REDIS_URL"], smtp_sink.port), tmp_path)
    traffic, prefix = Traffic(), f"scale-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    try:
        bases = [fleet.web("web-a"), fleet.web("web-b")]
        for name in ("a", "b"):
            fleet.worker(f"worker-{name}")
            fleet.scheduler(f"cron-{name}")
        for name, base in zip(("web-a", "web-b"), bases, strict=True):
            fleet.answering(name, base)
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
        _run_threads([first_visit(aid) for aid in visitors], 90)
        phases["visits"] = time.monotonic() - started

        # 2. Reminders fall due for everyone still invited; two schedulers sweep every
        # 2 s, and each approver gets reminder 1 once, however many sweeps run.
        first_round = _invited()
        _make_reminders_due(first_round)
        _wait("reminder 1 for everyone", lambda: set(_reminder_numbers()) == {
            (aid, 1) for aid in first_round})
        time.sleep(3 * SWEEP_SECONDS)  # more sweeps: still one each
        phases["reminders"] = time.monotonic() - started

        # 3. Both approvers of four deliverables approve (certificates follow).
        deciders = [aid for group in groups[:4] for aid in group]
        _run_threads([lambda aid=aid: traffic.decide(visitors[aid], aid, None)
                      for aid in deciders], 60)
        _wait("outbox, webhooks and certificates done", lambda: _drained(receiver))
        before = _assert_exactly_once(smtp_sink, receiver, repeats_allowed=0)
        phases["decided"] = time.monotonic() - started
        report(f"before the kills: {len(traffic.replies)} requests, {before}")

        # 4. Under traffic, kill one of each; reminder 2 falls due for two deliverables
        # nobody decides on, while the rest of the approvers comment and approve.
        waiting = [aid for group in groups[6:8] for aid in group]
        deciding = [aid for group in groups[4:6] + groups[8:] for aid in group]
        _make_reminders_due(waiting)
        window, survivor = 8.0, bases[1]
        smtp_sink.delay = 0.1  # slow mail, so the killed worker is likelier caught mid-batch
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
        runner = threading.Thread(target=_run_threads, daemon=True, args=(
            [late_visit(n, aid) for n, aid in enumerate(waiting + deciding)], 60))
        runner.start()
        time.sleep(window * 0.4)
        caught_sending = fleet.sending_within("worker-a", window * 0.4)
        killed_at = utcnow()
        processes_killed = sum(fleet.kill(name) for name in ("web-a", "worker-a", "cron-a"))
        smtp_sink.delay = 0
        runner.join(timeout=65)
        assert not runner.is_alive()
        time.sleep(3)  # what the survivors claimed before the kill is done by now
        unleashed = _expire_leases_taken_before(killed_at)
        phases["killed"] = time.monotonic() - started

        # 5. The survivors finish: reminder 2 once each, every email, webhook and
        # certificate, and nothing anyone was told is recorded went missing.
        _wait("reminder 2 for the waiting", lambda: {(aid, 2) for aid in waiting}
              <= set(_reminder_numbers()))
        _wait("outbox, webhooks and certificates done after the kills",
              lambda: _drained(receiver))
        phases["drained"] = time.monotonic() - started
        time.sleep(2 * SWEEP_SECONDS)
        _fresh()
        comments = _assert_nothing_acknowledged_was_lost(traffic, prefix)
        after = _assert_exactly_once(smtp_sink, receiver, repeats_allowed=1)
        _assert_files_on_s3(app, s3_storage)
        assert {a for a, n in _reminder_numbers() if n == 2} == set(waiting)
        for name in ("web-b", "worker-b", "cron-b"):
            assert fleet.procs[name].poll() is None, fleet.log(name)
        assert Visitor(survivor).send("GET", "/login").status == 200
    finally:
        fleet.stop()
        receiver.stop()
    ran = time.monotonic() - started
    statuses = Counter(r.status for r in traffic.replies)
    report(f"scale-out: {len(traffic.replies)} requests in {ran:.0f} s {dict(statuses)}, "
           f"{comments} comments, {sum(1 for s in traffic.decisions.values() if s)} decisions, "
           f"{after['emails']} emails ({after['emails_arrived']} arrivals), "
           f"{after['reminders']} reminders, {after['webhooks']} webhook deliveries "
           f"({after['webhooks_arrived']} arrivals), {after['certificates']} certificates, "
           f"kills {fleet.kills} ({processes_killed} processes; the worker's job then: "
           f"{caught_sending or 'none'}), "
           f"leases run out by hand {unleashed}; "
           f"seconds from the start: { {k: round(v) for k, v in phases.items()} }")
