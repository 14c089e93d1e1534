"""The conversation both ways, in minutes: a client's comments reach the owner and the
team's replies reach the approvers, one email per burst, on a clock the tests move."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

import jobs.periodic
from portal import workflow
from portal.extensions import db
from portal.models import (
    Comment,
    DeliverableState,
    OutboxMessage,
    Policy,
    ReviewRequest,
    User,
    utcnow,
)
from portal.notifications import conversation
from portal.workflow.comments import post_comment
from portal.workflow.invitations import revoke_link

LINK = re.compile(r"http://portal\.test(/r/[\w.\-]+)(#comment-\d+)?")


@pytest.fixture
def t0() -> datetime:
    return utcnow().replace(second=0, microsecond=0)


def _text(email: Any) -> str:
    return email.get_body(preferencelist=("plain",)).get_content()


def _html(email: Any) -> str:
    return email.get_body(preferencelist=("html",)).get_content()


def _said(author: Any, request: ReviewRequest, body: str, at: datetime, **kwargs: Any) -> Comment:
    """A comment written at `at` (the clock the sweep is then moved against)."""
    if not isinstance(author, User):
        kwargs.setdefault("seen_sha256", request.version.sha256)
    comment = post_comment(author, request, body, **kwargs)
    comment.created_at = at
    db.session.commit()
    return comment


def _sweep(at: datetime) -> int:
    """The every-minute job at `at`; returns how many conversation emails it wrote."""
    return jobs.periodic.every_minute(at.isoformat())["comment_notices"]


def _notices(to: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.idempotency_key.like("comments:%"))
    if to:
        query = query.where(OutboxMessage.to_addr == to)
    return list(db.session.scalars(query.order_by(OutboxMessage.id)))


def test_the_burst_rule_quiet_for_three_minutes_or_ten_after_the_first(app, t0):
    due = conversation.burst_due
    assert not due(t0, t0, t0 + timedelta(minutes=2, seconds=59))
    assert due(t0, t0, t0 + timedelta(minutes=3))  # quiet long enough
    assert not due(t0, t0 + timedelta(minutes=8), t0 + timedelta(minutes=9))  # still talking
    assert due(t0, t0 + timedelta(minutes=9), t0 + timedelta(minutes=10))  # waited long enough
    app.config["COMMENT_QUIET_MINUTES"] = 1
    assert due(t0, t0, t0 + timedelta(minutes=1))


def test_clients_comments_reach_the_owner_once_per_burst(mail, app, make_deliverable, staff, t0):
    first = make_deliverable(DeliverableState.DELIVERED, approvers=2)
    second = make_deliverable(DeliverableState.DELIVERED)
    jane, john = first.open_request.approvers
    _said(jane.contact, first.open_request, "Love the colours", t0)
    _said(john.contact, first.open_request, "Logo too small", t0 + timedelta(minutes=1))
    _said(second.open_request.approvers[0].contact, second.open_request, "Typo in title",
          t0 + timedelta(minutes=2))
    _said(staff, first.open_request, "Our reply", t0 + timedelta(minutes=2))
    _said(staff, first.open_request, "Internal: check with design", t0, internal=True)
    before = len(mail.to(staff.email))

    assert _sweep(t0 + timedelta(minutes=4)) == 0  # the last came two minutes ago
    assert _sweep(t0 + timedelta(minutes=5)) == 3  # quiet for three: the owner; Our reply x2
    [email] = mail.to(staff.email)[before:]
    assert email["Subject"] == "3 new client comments on 2 deliverables"
    text = _text(email)
    for shown in ("Love the colours", "Logo too small", "Typo in title", jane.contact.name,
                  "version 1"):
        assert shown in text, shown
    assert "Our reply" not in text and "Internal" not in text
    comment_id = db.session.scalars(select(Comment.id).where(
        Comment.body == "Love the colours")).one()
    assert f"http://portal.test/deliverables/{first.id}#comment-{comment_id}" in text
    assert "<time datetime=" in _html(email)

    # Every comment is marked; a later sweep (or the same one retried) writes nothing.
    assert _sweep(t0 + timedelta(minutes=6)) == 0
    assert _sweep(t0 + timedelta(minutes=5)) == 0
    assert len(mail.to(staff.email)) == before + 1
    assert all(c.notified_at == t0 + timedelta(minutes=5) for c in db.session.scalars(
        select(Comment).where(Comment.internal.is_(False))))
    internal = db.session.scalars(select(Comment).where(Comment.internal.is_(True))).one()
    assert internal.notified_at is None  # never sent to anyone


def test_a_steady_stream_goes_out_ten_minutes_after_its_first(mail, app, make_deliverable,
                                                              staff, t0):
    d = make_deliverable(DeliverableState.DELIVERED)
    approver = d.open_request.approvers[0]
    for minute in range(0, 13, 2):  # every two minutes: never quiet for three
        _said(approver.contact, d.open_request, f"Point at minute {minute}",
              t0 + timedelta(minutes=minute))
        if minute < 10:
            assert _sweep(t0 + timedelta(minutes=minute, seconds=30)) == 0
    assert _sweep(t0 + timedelta(minutes=10)) == 1
    [email] = _notices(staff.email)
    assert email.subject == "6 new client comments on Homepage v3"
    assert "Point at minute 10" in email.body_text and "minute 12" not in email.body_text
    # The comment at minute 12 starts the next burst.
    assert _sweep(t0 + timedelta(minutes=14)) == 0
    assert _sweep(t0 + timedelta(minutes=15)) == 1
    assert "Point at minute 12" in _notices(staff.email)[-1].body_text


def test_a_lost_mark_does_not_send_the_burst_twice(app, make_deliverable, staff, t0):
    d = make_deliverable(DeliverableState.DELIVERED)
    comment = _said(d.open_request.approvers[0].contact, d.open_request, "Hello", t0)
    assert conversation.send_notices(t0 + timedelta(minutes=3)).owners == 1
    db.session.commit()
    comment.notified_at = None  # as if a retried sweep found it unmarked
    db.session.commit()
    conversation.send_notices(t0 + timedelta(minutes=4))
    db.session.commit()
    assert len(_notices(staff.email)) == 1  # the burst's key names it: written once


def test_a_staff_reply_reaches_the_approvers_with_a_link_to_the_spot(
        mail, app, browser, make_deliverable, staff, t0):
    d = make_deliverable(DeliverableState.DELIVERED, approvers=2)
    request = d.open_request
    jane, john = request.approvers
    _said(jane.contact, request, "Can the logo be bigger?", t0)
    reply = _said(staff, request, "Yes, in the next version.", t0 + timedelta(minutes=1))
    _said(staff, request, "Internal: design is on holiday", t0 + timedelta(minutes=1),
          internal=True)
    jane_email, john_email = jane.contact.email, john.contact.email
    invitations = len(mail.to(jane_email))

    assert _sweep(t0 + timedelta(minutes=4)) == 3  # the owner, Jane and John
    for address in (jane_email, john_email):
        [email] = mail.to(address)[invitations:]
        assert email["Subject"] == "Sam Staff replied on Homepage v3"
        assert email["Reply-To"] == staff.email
        text = _text(email)
        assert "Yes, in the next version." in text
        assert "Internal" not in text and "holiday" not in text
        assert "You can answer on the review page" in text
        # Her own comment is not echoed back to her (nor sent to John as the team's).
        assert "Can the logo be bigger?" not in text
        assert "See the reply on the review page" in _html(email)
    link = LINK.search(_text(mail.to(jane_email)[-1]))
    assert link.group(2) == f"#comment-{reply.id}"
    db.session.refresh(jane)
    assert jane.link_expires_at == t0 + timedelta(minutes=4, days=request.link_ttl_days)

    opened = browser.get(link.group(1))
    assert opened.status_code == 303 and "#" not in opened.headers["Location"]
    page = browser.get(opened.headers["Location"]).get_data(as_text=True)
    assert f'id="comment-{reply.id}"' in page and "Yes, in the next version." in page


def test_who_hears_the_team(app, make_deliverable, make_project, make_client, staff, t0):
    """Approvers brought in with a live link hear replies; a revoked link, a contact not yet
    asked (sequential) and a contact without an address do not."""
    client = make_client(contacts=3)
    client.contacts[2].email = None
    db.session.commit()
    d = make_deliverable(DeliverableState.DELIVERED, project=make_project(client),
                         policy=Policy.SEQUENTIAL, approvers=2)
    request = d.open_request
    first, _queued = request.approvers
    revoke_link(staff, first)
    db.session.commit()
    _said(staff, request, "A reply nobody may get", t0)
    assert conversation.send_notices(t0 + timedelta(minutes=3)).clients == 0
    db.session.commit()
    assert _notices() == []
    assert all(c.notified_at for c in db.session.scalars(select(Comment)))


def test_a_reply_on_a_closed_request_still_reaches_the_client(
        mail, app, browser, make_deliverable, staff, t0):
    d = make_deliverable(DeliverableState.CHANGES_REQUESTED)
    d.project.client.timezone = "Europe/Paris"  # times in the email as the client reads them
    request = d.requests[0]
    approver = request.approvers[0]
    reply = _said(staff, request, "Understood, new colours on Monday.", t0)
    address = approver.contact.email
    sent = len(mail.to(address))
    assert _sweep(t0 + timedelta(minutes=3)) == 1
    [email] = mail.to(address)[sent:]
    text = _text(email)
    assert "Understood, new colours on Monday." in text
    assert "This review is closed (changes requested)" in text
    assert f"{t0.astimezone(ZoneInfo('Europe/Paris')):%H:%M} CET" in text
    assert "reply to this email" in text
    link = LINK.search(text)
    opened = browser.get(link.group(1))
    page = browser.get(opened.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'id="comment-{reply.id}"' in html and 'id="comment-form"' not in html


def test_a_reply_on_a_cancelled_request_keeps_its_links_dead(
        mail, app, browser, make_deliverable, staff, t0):
    d = make_deliverable(DeliverableState.DELIVERED, approvers=2)
    d.project.client.timezone = "Asia/Tokyo"
    old = d.open_request
    jane, john = old.approvers
    workflow.cancel_request(staff, old)
    db.session.commit()
    # Re-sent to Jane only: her email points to her new place; John's carries no link.
    workflow.deliver(staff, d, [jane.contact], Policy.PARALLEL, old.due_date)
    db.session.commit()
    _said(staff, old, "Sorry, that was the wrong file.", t0)
    generations = (jane.link_generation, john.link_generation)
    jane_email, john_email = jane.contact.email, john.contact.email
    sent = {a: len(mail.to(a)) for a in (jane_email, john_email)}

    assert _sweep(t0 + timedelta(minutes=3)) == 2
    [to_jane] = mail.to(jane_email)[sent[jane_email]:]
    [to_john] = mail.to(john_email)[sent[john_email]:]
    for email in (to_jane, to_john):
        assert "Sorry, that was the wrong file." in _text(email)
        assert "That review was cancelled" in _text(email)
    assert LINK.search(_text(to_john)) is None
    assert "no page to open" in _text(to_john)
    assert f"{t0.astimezone(ZoneInfo('Asia/Tokyo')):%H:%M} JST" in _text(to_john)
    link = LINK.search(_text(to_jane))
    assert link.group(2) is None  # the reply is not on the new page
    opened = browser.get(link.group(1))
    new = d.open_request
    assert opened.headers["Location"].endswith(f"/review/{new.approvers[0].public_id}")
    db.session.refresh(jane)
    db.session.refresh(john)
    assert (jane.link_generation, john.link_generation) == generations  # still dead


def test_the_sweep_reads_a_fixed_number_of_rows_however_many_comments(
        app, make_deliverable, staff, count_queries, t0):
    def queries(n: int) -> int:
        d = make_deliverable(DeliverableState.DELIVERED, approvers=2)
        for i in range(n):
            approver = d.open_request.approvers[i % 2]
            _said(approver.contact, d.open_request, f"Point {i}", t0)
            _said(staff, d.open_request, f"Reply {i}", t0)
        with count_queries() as counter:
            conversation.send_notices(t0 + timedelta(minutes=3))
        db.session.commit()
        return counter.count

    assert queries(2) == queries(12)


def test_the_sweep_reads_unsent_comments_from_the_partial_index(app, t0):
    """However long the history, the minute's question reads only what is unsent."""
    query = conversation.pending_query(t0).with_only_columns(Comment.id)
    sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
    if db.engine.dialect.name == "sqlite":
        plan = " ".join(str(row) for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
    else:  # an empty table is cheaper to scan; ask whether the index can answer at all
        db.session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = " ".join(str(row) for row in db.session.execute(text(f"EXPLAIN {sql}")))
    db.session.rollback()
    assert "ix_comments_to_notify" in plan, plan


def test_the_cli_sweep_sends_the_conversation(app, make_deliverable, staff, t0):
    d = make_deliverable(DeliverableState.DELIVERED)
    _said(d.open_request.approvers[0].contact, d.open_request, "From the CLI", t0)
    at = (t0 + timedelta(minutes=3)).isoformat()
    result = app.test_cli_runner().invoke(args=["jobs", "sweep", "--at", at])
    assert result.exit_code == 0, result.output
    assert "comment_notices: 1" in result.output
    assert "From the CLI" in _notices(staff.email)[0].body_text
