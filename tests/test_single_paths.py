"""One path per state change: every ending of a request, the one link lifetime, the one
owner, and email and jobs sent by the commit itself (never by a caller remembering to)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal import workflow
from portal.errors import NotAllowed
from portal.extensions import db
from portal.local_time import format_when
from portal.models import (
    ApproverStatus,
    AuditEvent,
    DeliverableState,
    OutboxMessage,
    OutboxStatus,
    Outcome,
    Policy,
    RequestStatus,
    Role,
    utcnow,
)
from portal.notifications import webhooks
from portal.workflow import reminders
from portal.workflow.links import LinkState, check_token, issue_token
from tests.conftest import on_screen

S = DeliverableState


def _emails_to(address: str) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.to_addr == address)
                                   .order_by(OutboxMessage.id)))


def _verbs(deliverable_id: int) -> list[str]:
    return list(db.session.scalars(select(AuditEvent.verb).where(
        AuditEvent.deliverable_id == deliverable_id).order_by(AuditEvent.seq)))


# --- every ending goes through one function ---------------------------------------------

def _end(how: str, d, staff, now):
    request = d.open_request
    first, second = request.approvers
    if how == "approved":
        workflow.record_decision(first, Outcome.APPROVED, now=now, seen_sha256=on_screen(first))
        workflow.record_decision(second, Outcome.APPROVED, now=now, seen_sha256=on_screen(second))
    elif how == "changes_requested":
        workflow.record_decision(first, Outcome.REJECTED, "Wrong colours",
                                 now=now, seen_sha256=on_screen(first))
    elif how == "cancelled":
        workflow.cancel_request(staff, request, now=now)
    else:
        from portal.workflow.closing import expire_request

        expire_request(request, now)
    db.session.commit()
    return request


@pytest.mark.parametrize("how, deliverable_state", [
    ("approved", S.APPROVED), ("changes_requested", S.CHANGES_REQUESTED),
    ("cancelled", S.READY), ("expired", S.READY)])
def test_every_ending_closes_the_same_way(make_deliverable, staff, how, deliverable_state):
    d = make_deliverable(S.DELIVERED, policy=Policy.SEQUENTIAL, approvers=2)
    generations = [a.link_generation for a in d.open_request.approvers]
    now = utcnow() + timedelta(minutes=5)

    request = _end(how, d, staff, now)

    db.session.refresh(d)
    assert request.status == RequestStatus(how) and request.closed_at == now
    assert d.state == deliverable_state and d.last_activity_at == now
    for approver in request.approvers:  # nobody is chased, nobody undecided can decide
        assert approver.next_reminder_at is None
        assert approver.status != ApproverStatus.INVITED
        assert approver.status != ApproverStatus.QUEUED
    assert (d.current_version.locked_at is not None) == (how == "approved")
    # Only a cancellation revokes the links outright; the others still show the outcome.
    revoked = [a.link_generation != g for a, g in zip(request.approvers, generations,
                                                       strict=True)]
    assert revoked == [how == "cancelled"] * 2
    assert _verbs(d.id).count(f"request.{how}") == 1
    with pytest.raises(Exception, match="already"):
        workflow.cancel_request(staff, request)


# --- one link lifetime, one sender ----------------------------------------------------------

def test_every_email_with_a_link_renews_the_one_lifetime(make_deliverable, staff):
    d = make_deliverable(S.DELIVERED)
    request = d.open_request
    approver = request.approvers[0]
    ttl = timedelta(days=request.link_ttl_days)
    assert approver.link_expires_at == approver.invited_at + ttl
    later = utcnow() + timedelta(days=3)

    assert reminders.remind(approver, later)
    db.session.commit()
    assert approver.link_expires_at == later + ttl
    [reminder] = [m for m in _emails_to(approver.contact.email)
                  if "reminder, please review" in m.subject]
    assert "http://portal.test/r/" in reminder.body_text
    # The page judges a link by the same column the sweep and staff see.
    token = issue_token(approver)
    assert check_token(token, now=later + ttl - timedelta(seconds=1)).state == LinkState.VALID
    assert check_token(token, now=later + ttl + timedelta(seconds=1)).state == LinkState.EXPIRED


def test_staff_see_until_when_each_link_works(make_deliverable, browser, staff):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    browser.login(staff.email)
    html = browser.get(f"/deliverables/{d.id}").get_data(as_text=True)
    assert "link works until" in html
    assert format_when(approver.link_expires_at) in html  # staff read UTC


# --- one owner --------------------------------------------------------------------------------

def test_the_deliverables_owner_hears_of_everything_not_the_projects(
        make_deliverable, make_user, staff):
    d = make_deliverable(S.DELIVERED, approvers=2)
    project_owner = d.project.owner
    chased = make_user(Role.STAFF, email="olive@agency.example", name="Olive Owner")
    d.owner = chased  # the deliverable changed hands after it was created
    db.session.commit()
    request = d.open_request
    first = request.approvers[0]

    workflow.record_decision(first, Outcome.APPROVED, seen_sha256=on_screen(first))
    reminders.escalate(request, utcnow())
    db.session.commit()
    from portal.workflow.closing import expire_request

    expire_request(request, utcnow())
    db.session.commit()

    subjects = [m.subject for m in _emails_to(chased.email)]
    assert f"{first.contact.name} approved {d.title} (version 1)" in subjects
    assert any("has not answered" in s for s in subjects)
    assert any(s.startswith("Expired without a decision") for s in subjects)
    assert project_owner.id == staff.id
    assert [m.subject for m in _emails_to(staff.email)
            if "has not answered" in m.subject or "Expired" in m.subject] == []


# --- sent by the commit -------------------------------------------------------------------------

def test_a_plain_commit_sends_what_the_transaction_wrote(make_deliverable, staff, colleague):
    d = make_deliverable(S.DRAFT)
    workflow.submit_for_review(staff, d, colleague)
    [message] = _emails_to(colleague.email)
    assert message.status == OutboxStatus.PENDING
    db.session.commit()  # no outbox.commit(), no dispatch call
    db.session.refresh(message)
    assert message.status == OutboxStatus.SENT and message.transport == "console"


def test_a_rollback_sends_nothing(make_deliverable, staff, colleague):
    d = make_deliverable(S.DRAFT)
    workflow.submit_for_review(staff, d, colleague)
    assert len(_emails_to(colleague.email)) == 1
    db.session.rollback()
    db.session.commit()  # a later commit must not send what was rolled back
    assert _emails_to(colleague.email) == []
    assert db.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.status == OutboxStatus.SENT)) == 0


# --- one permission rule, one error --------------------------------------------------------------

def test_admin_only_actions_are_403_for_staff_in_the_domain_too(staff):
    with pytest.raises(NotAllowed) as refused:
        webhooks.register(staff, "https://example.com/hook", "", allow_private=False)
    assert refused.value.status == 403
