"""Email delivery through a real Redis, a real `rq worker` and a real SMTP server."""
from __future__ import annotations

import os
import re
import signal
import time

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    Decision,
    DeliverableState,
    OutboxMessage,
    OutboxStatus,
    Policy,
)
from portal.notifications import outbox

LINK = re.compile(r"http://portal\.test(/r/[\w.\-]+)")


def _text(email) -> str:
    return email.get_body(preferencelist=("plain",)).get_content()


def test_decision_email_reaches_smtp_with_a_working_link(
        jobs_config, app, browser, make_deliverable, run_worker, smtp_sink, staff):
    d = make_deliverable(DeliverableState.DELIVERED, policy=Policy.SEQUENTIAL, approvers=2)
    first, second = d.open_request.approvers
    run_worker.burst()

    [invite] = smtp_sink.to(first.contact.email)
    assert not smtp_sink.to(second.contact.email)  # sequential: not their turn yet
    assert invite["Subject"].startswith("Signoff: please review Homepage v3 v1 by ")
    # The agency's name at the configured address (people/agency.py).
    assert invite["From"] == "Signoff <review@agency.test>"
    assert invite["Reply-To"] == staff.email
    assert invite["Message-ID"] and invite["Date"]
    assert invite.get_content_type() == "multipart/alternative"
    assert "Open the review page" in invite.get_body(preferencelist=("html",)).get_content()

    path = LINK.search(_text(invite)).group(1)
    assert "/review/" in browser.get(path).headers["Location"]
    browser.get(browser.review)  # the page the link leads to, whose form is sent
    response = browser.post(f"{browser.review}/decision", {"choice": "approve", "confirm": "1"})
    assert response.status_code == 303
    run_worker.burst()

    [notice] = smtp_sink.to(staff.email)
    assert notice["Subject"].startswith(f"{first.contact.name} approved Homepage v3")
    # The decider's own receipt: what, on which exact file, when and from where.
    invite_again, receipt = smtp_sink.to(first.contact.email)
    assert invite_again["Subject"] == invite["Subject"]
    assert receipt["Subject"] == "Your decision on Homepage v3 (version 1) is recorded (Signoff)"
    decision = db.session.scalars(select(Decision)).one()
    receipt_text = _text(receipt)
    for shown in ("Decision: approved", "Version: 1, homepage.pdf", decision.version_sha256,
                  f"{decision.at:%Y-%m-%d %H:%M:%S} UTC", f"IP address {decision.ip}",
                  decision.user_agent, "If you did not make this decision"):
        assert shown in receipt_text, shown
    [next_invite] = smtp_sink.to(second.contact.email)
    assert LINK.search(_text(next_invite))
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.status != OutboxStatus.SENT)) == 0


def test_dead_redis_loses_nothing(jobs_config, app, browser, make_deliverable, run_worker,
                                  smtp_sink, staff):
    d = make_deliverable(DeliverableState.DELIVERED)
    run_worker.burst()
    [invite] = smtp_sink.to(d.open_request.approvers[0].contact.email)

    # Redis goes away: nothing listens on port 1.
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    app.extensions.pop("signoff_queue", None)
    browser.get(LINK.search(_text(invite)).group(1))
    browser.get(browser.review)
    started = time.monotonic()
    response = browser.post(f"{browser.review}/decision", {"choice": "approve", "confirm": "1"})
    elapsed = time.monotonic() - started
    assert response.status_code == 303
    assert elapsed < 10, "a dead Redis must not hang the page (connect timeout is 1 s)"
    assert db.session.scalar(select(func.count(Decision.id))) == 1
    pending = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.status == OutboxStatus.PENDING)).all()
    client_email = d.requests[0].approvers[0].contact.email
    # The owner's notice and the client's receipt wait in the outbox.
    assert sorted(m.to_addr for m in pending) == sorted([staff.email, client_email])

    # Redis is back: the relay hands every pending row on, and the worker sends it.
    app.config["REDIS_URL"] = jobs_config["REDIS_URL"]
    app.extensions.pop("signoff_queue", None)
    assert outbox.relay() == 2
    run_worker.burst()
    assert len(smtp_sink.to(staff.email)) == 1
    assert [m["Subject"] for m in smtp_sink.to(client_email)][-1].startswith("Your decision")
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.status == OutboxStatus.PENDING)) == 0


def test_smtp_refusals_are_retried_and_sent_once(jobs_config, app, make_deliverable,
                                                 run_worker, smtp_sink):
    smtp_sink.refuse_next = 2
    make_deliverable(DeliverableState.DELIVERED)
    run_worker.burst()
    messages = db.session.scalars(select(OutboxMessage)).all()
    assert {m.status for m in messages} == {OutboxStatus.SENT}
    # Two refusals cost two extra attempts, and each message still arrived exactly once.
    assert sum(m.attempts for m in messages) == len(messages) + 2
    assert sorted(r[0] for r, _ in smtp_sink.messages) == sorted(m.to_addr for m in messages)


def test_last_failed_attempt_is_shown_to_staff_with_retry(
        jobs_config, app, browser, make_deliverable, run_worker, smtp_sink, staff):
    smtp_sink.refuse_always = True
    d = make_deliverable(DeliverableState.DELIVERED)
    run_worker.burst()
    message = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.to_addr == d.open_request.approvers[0].contact.email))
    assert message.status == OutboxStatus.FAILED and message.attempts == 5
    assert "451" in message.last_error

    browser.login(staff.email)
    page = browser.get(f"/deliverables/{d.id}").get_data(as_text=True)
    assert "Some emails could not be delivered" in page and "Retry" in page
    problems = browser.get("/delivery-problems").get_data(as_text=True)
    assert message.to_addr in problems

    smtp_sink.refuse_always = False
    browser.post(f"/outbox/{message.id}/retry")
    run_worker.burst()
    db.session.refresh(message)
    assert message.status == OutboxStatus.SENT
    assert len(smtp_sink.to(message.to_addr)) == 1


def test_killed_worker_loses_no_email(jobs_config, app, make_deliverable, make_project,
                                      run_worker, smtp_sink):
    project = make_project()
    smtp_sink.delay = 0.15  # slow enough to kill the worker mid-batch
    for _ in range(12):
        make_deliverable(DeliverableState.DELIVERED, project=project, approvers=2)
    expected = db.session.scalar(select(func.count(OutboxMessage.id)))
    worker = run_worker(burst=False)
    smtp_sink.wait_for(3)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    delivered_before_restart = len(smtp_sink.messages)
    assert 0 < delivered_before_restart < expected

    smtp_sink.delay = 0
    db.session.expire_all()
    outbox.relay()
    run_worker.burst()
    db.session.expire_all()
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.status != OutboxStatus.SENT)) == 0
    arrived = [re.search(r"outbox(\d+)", m["Message-ID"]).group(1)
               for _, m in smtp_sink.messages]
    # Every message arrived; at most the one cut between SMTP and commit arrived twice.
    assert len(set(arrived)) == expected
    assert len(arrived) - len(set(arrived)) <= 1


def test_job_popped_by_a_worker_that_died_is_relayed_again(
        jobs_config, app, make_deliverable, run_worker, smtp_sink):
    """A worker killed right after taking a job off the queue leaves it marked queued
    but in no queue; the relay must notice and queue it again."""
    from portal.notifications.queue import job_queue

    deliverable = make_deliverable(DeliverableState.DELIVERED)
    queue = job_queue()
    queue.remove(f"render-{deliverable.current_version.id}")  # the preview: not this test's
    popped = queue.connection.lpop(queue.key)  # what the dying worker took
    assert popped is not None
    assert queue.fetch_job(popped.decode()).get_status() == "queued"

    pending = db.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.status == OutboxStatus.PENDING))
    # The popped job was the one send job woken for all of them: every due row is handed
    # on again, by one job.
    assert outbox.relay() == pending > 0
    db.session.commit()  # the relay hands them on at the commit
    assert queue.count == 1
    run_worker.burst()
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.status != OutboxStatus.SENT)) == 0


def test_a_job_still_running_keeps_its_id_to_itself(jobs_config, app):
    """The relay may ask again for a send job while the last one under that id still runs
    (another worker took it). The new one gets an id of its own: sharing the id would share
    the job's Redis hash, which the first to finish deletes under the other."""
    from rq.job import JobStatus

    from portal.notifications.outbox import SEND_DUE_JOB, WAKE
    from portal.notifications.queue import enqueue_unless_waiting, job_queue

    queue = job_queue()
    assert enqueue_unless_waiting(SEND_DUE_JOB, job_id="outbox-1", coalesce=WAKE)
    running = queue.fetch_job("outbox-1")
    queue.remove(running.id)  # a worker took it off the queue and runs it
    running.set_status(JobStatus.STARTED)
    assert enqueue_unless_waiting(SEND_DUE_JOB, job_id="outbox-1", coalesce=WAKE)
    [again] = queue.get_job_ids()
    assert again.startswith("outbox-1_")
    assert queue.fetch_job("outbox-1").get_status(refresh=True) == JobStatus.STARTED
    # and the waiting one does for the next wake-up, as before
    assert not enqueue_unless_waiting(SEND_DUE_JOB, job_id="outbox-1", coalesce=WAKE)
