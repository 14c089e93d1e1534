"""Email in batches: one send job, one SMTP connection for many messages, each message
with its own outcome, and no loss or repeat when a worker dies mid-batch (real Redis, real
`rq worker`, real SMTP sink that counts its connections: tests/servers.py)."""
from __future__ import annotations

import os
import re
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from portal.extensions import db
from portal.models import OutboxMessage, OutboxStatus, utcnow
from portal.notifications import outbox
from portal.notifications.queue import job_queue
from tests.conftest import SmtpSink


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    yield sink
    sink.stop()


def _queue_rows(count: int, tag: str = "batch", hand_on: bool = True) -> list[int]:
    """`count` pending emails written in one commit, each handed on as the app does
    (unless `hand_on` is False: then only the rows are written)."""
    db.session.execute(insert(OutboxMessage), [{
        "idempotency_key": f"{tag}:{i}", "to_addr": f"contact{i}@client.example",
        "to_name": f"Contact {i}", "reply_to": "owner@agency.example",
        "subject": f"Reminder {i}", "body_text": f"Hello {i}", "body_html": f"<p>Hello {i}</p>",
        "next_attempt_at": utcnow(),
    } for i in range(count)])
    ids = list(db.session.scalars(select(OutboxMessage.id).where(
        OutboxMessage.idempotency_key.like(f"{tag}:%")).order_by(OutboxMessage.id)))
    for message_id in ids if hand_on else ():
        outbox.send_after_commit(message_id)
    db.session.commit()
    return ids


def _rows(ids: list[int]) -> dict[int, OutboxMessage]:
    db.session.expire_all()
    return {m.id: m for m in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.id.in_(ids)))}


def _arrived(sink: SmtpSink) -> Counter[int]:
    return Counter(int(re.search(r"outbox(\d+)", m["Message-ID"]).group(1))
                   for _, m in sink.messages)


def test_one_job_sends_a_batch_over_one_connection(jobs_config, app, run_worker, smtp_sink):
    ids = _queue_rows(8)
    assert job_queue().count == 1  # one wake-up for the commit's eight rows

    run_worker.burst()
    assert smtp_sink.sessions == 1
    assert _arrived(smtp_sink) == Counter(ids)
    assert {(m.status, m.attempts) for m in _rows(ids).values()} == {(OutboxStatus.SENT, 1)}


def test_a_refused_recipient_fails_only_that_message(jobs_config, app, smtp_sink):
    ids = _queue_rows(3)
    smtp_sink.refuse_rcpt = {"contact1@client.example"}

    batch = outbox.send_due()
    assert (batch.claimed, batch.sent, batch.retrying) == (3, 2, 1)
    rows = _rows(ids)
    refused = rows[ids[1]]
    assert refused.status == OutboxStatus.PENDING and refused.attempts == 1
    assert "550" in refused.last_error and refused.claimed_until is None
    assert [rows[i].status for i in (ids[0], ids[2])] == [OutboxStatus.SENT] * 2
    assert smtp_sink.sessions == 1  # the refusal did not cost the others their connection
    assert _arrived(smtp_sink) == Counter([ids[0], ids[2]])

    smtp_sink.refuse_rcpt = set()
    assert outbox.send_due().sent == 1  # its retry (intervals are 0 here)
    assert _arrived(smtp_sink) == Counter(ids)


def test_a_dropped_connection_fails_the_rest_and_they_go_later_exactly_once(
        jobs_config, app, smtp_sink):
    ids = _queue_rows(6)
    smtp_sink.drop_at = 3  # the server hangs up instead of accepting the third

    batch = outbox.send_due()
    assert (batch.claimed, batch.sent, batch.retrying) == (6, 2, 4)
    rows = _rows(ids)
    assert [rows[i].status for i in ids[:2]] == [OutboxStatus.SENT] * 2
    for later in ids[2:]:  # not accepted: one failed attempt each, to be retried
        assert (rows[later].status, rows[later].attempts) == (OutboxStatus.PENDING, 1)
        assert "Disconnected" in rows[later].last_error

    batch = outbox.send_due()
    assert (batch.claimed, batch.sent) == (4, 4)
    assert smtp_sink.sessions == 2
    assert _arrived(smtp_sink) == Counter(ids)  # each exactly once
    assert {m.status for m in _rows(ids).values()} == {OutboxStatus.SENT}
    assert outbox.send_due().claimed == 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_a_worker_killed_mid_batch_leaves_no_loss_and_no_repeat(
        jobs_config, app, run_worker, smtp_sink):
    ids = _queue_rows(12)
    smtp_sink.delay = 0.15  # slow enough to kill it mid-batch
    worker = run_worker(burst=False)
    smtp_sink.wait_for(3)
    for pid in [*_children(worker.pid), worker.pid]:  # the work horse, then the worker
        os.kill(pid, signal.SIGKILL)
    worker.wait(timeout=10)
    smtp_sink.delay = 0

    rows = _rows(ids)
    sent_before = {i for i, m in rows.items() if m.status == OutboxStatus.SENT}
    held = {i for i, m in rows.items() if m.status == OutboxStatus.PENDING}
    assert sent_before and held and sent_before | held == set(ids)
    assert all(rows[i].claimed_until > utcnow() for i in held)  # the dead batch's lease
    arrived_before = _arrived(smtp_sink)
    assert set(arrived_before) - sent_before <= {min(held)}  # at most the one in flight

    # While the lease lasts nobody else sends them: no repeat of what may be under way.
    outbox.relay()
    db.session.commit()
    run_worker.burst()
    assert _arrived(smtp_sink) == arrived_before

    # The lease runs out (as five minutes would): the relay hands them on, all go once.
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(held))
                       .values(claimed_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert outbox.relay() == len(held)
    db.session.commit()
    run_worker.burst()
    arrived = _arrived(smtp_sink)
    assert set(arrived) == set(ids)
    assert {m.status for m in _rows(ids).values()} == {OutboxStatus.SENT}
    repeated = {i for i, n in arrived.items() if n > 1}
    # Nothing marked sent went again; only the message cut between SMTP and its commit can.
    assert not repeated & sent_before and len(repeated) <= 1


def test_a_failed_message_wakes_the_send_job_when_its_retry_is_due(jobs_config, app,
                                                                     smtp_sink):
    from rq.registry import ScheduledJobRegistry

    from jobs.outbox import send_due

    app.config["MAIL_RETRY_INTERVALS"] = "60"
    smtp_sink.refuse_always = True
    [message_id] = _queue_rows(1)
    job_queue().empty()  # run by hand below

    assert send_due() == {"sent": 0, "retrying": 1, "failed": 0}
    due = _rows([message_id])[message_id].next_attempt_at
    assert 55 < (due - utcnow()).total_seconds() <= 60
    scheduled = ScheduledJobRegistry(queue=job_queue())
    assert scheduled.get_job_ids() == [f"outbox-at-{int(due.timestamp())}"]
    assert abs(scheduled.get_scheduled_time(f"outbox-at-{int(due.timestamp())}")
               .timestamp() - int(due.timestamp())) <= 1


def test_a_transports_bug_fails_its_message_and_the_batch_goes_on(app):
    """A transport that raises something unforeseen on one message (a bug, not a refusal):
    that message records a failed attempt and keeps its place in the retries; the messages
    before and after it are sent in the same batch, and nothing is left claimed."""
    from contextlib import contextmanager

    from portal.notifications.delivery import Outcome, attempt_many

    ids = _queue_rows(3, tag="bug", hand_on=False)
    offered: list[int] = []

    @contextmanager
    def transport():
        def send(row_id: int) -> Outcome:
            offered.append(row_id)
            if row_id == ids[1]:
                raise RuntimeError("the transport tripped over its own feet")
            return Outcome(fields={"transport": "test", "sent_at": utcnow()})
        yield send

    results = attempt_many(OutboxMessage, ids, lambda row: row.id, transport,
                           outbox.retry_policy(), utcnow())
    assert offered == ids
    rows = _rows(ids)
    assert [rows[i].status for i in ids] == [OutboxStatus.SENT, OutboxStatus.PENDING,
                                             OutboxStatus.SENT]
    assert "RuntimeError: the transport tripped" in rows[ids[1]].last_error
    assert rows[ids[1]].attempts == 1 and results[ids[1]].retrying
    assert all(rows[i].claimed_until is None for i in ids)
