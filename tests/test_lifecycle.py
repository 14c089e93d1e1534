"""The deliverable lifecycle: every legal move, every illegal one, and the locks."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from portal import workflow
from portal.demo.samples import sample_pdf
from portal.errors import IllegalTransition, Incomplete, InvalidInput, NotAllowed
from portal.extensions import db
from portal.models import (
    ApproverStatus,
    Contact,
    DeliverableState,
    InternalReview,
    OutboxMessage,
    Outcome,
    Policy,
    RequestStatus,
    ReviewRequest,
    Role,
    today_utc,
)
from tests.conftest import future, on_screen

S = DeliverableState


def test_happy_path_draft_to_approved(make_deliverable, staff, colleague):
    d = make_deliverable(S.DRAFT)
    workflow.submit_for_review(staff, d, colleague)
    assert d.state == S.IN_REVIEW and d.reviewer == colleague
    workflow.review_internally(colleague, d, approve=True, note="Fine")
    assert d.state == S.READY
    contact = d.project.client.contacts[0]
    request = workflow.deliver(staff, d, [contact], Policy.PARALLEL, future())
    assert d.state == S.DELIVERED and request.status == RequestStatus.OPEN
    workflow.record_decision(request.approvers[0], Outcome.APPROVED,
                             seen_sha256=on_screen(request.approvers[0]))
    db.session.commit()
    assert d.state == S.APPROVED and request.status == RequestStatus.APPROVED
    assert d.current_version.locked_at is not None


def test_send_back_needs_a_note_and_returns_to_draft(make_deliverable, colleague):
    d = make_deliverable(S.IN_REVIEW)
    with pytest.raises(InvalidInput, match="what needs to change"):
        workflow.review_internally(colleague, d, approve=False, note="  ")
    workflow.review_internally(colleague, d, approve=False, note="Logo is blurry")
    db.session.commit()
    assert d.state == S.DRAFT
    review = db.session.scalar(select(InternalReview))
    assert review.note == "Logo is blurry" and review.outcome.value == "sent_back"


def test_uploader_cannot_review_own_version(make_deliverable, staff):
    d = make_deliverable(S.IN_REVIEW)
    with pytest.raises(NotAllowed, match="colleague"):
        workflow.review_internally(staff, d, approve=True)
    assert d.state == S.IN_REVIEW


def test_uploader_cannot_be_named_reviewer(make_deliverable, staff):
    d = make_deliverable(S.DRAFT)
    with pytest.raises(InvalidInput, match="someone other"):
        workflow.submit_for_review(staff, d, staff)


def test_submit_without_a_version_is_refused(make_deliverable, staff):
    d = make_deliverable(S.DRAFT, with_version=False)
    with pytest.raises(IllegalTransition, match="Upload a version"):
        workflow.submit_for_review(staff, d)


ACTIONS = {
    "submit": lambda d, staff, colleague: workflow.submit_for_review(staff, d, colleague),
    "review": lambda d, staff, colleague: workflow.review_internally(colleague, d, approve=True),
    "send_back": lambda d, staff, colleague: workflow.review_internally(
        colleague, d, approve=False, note="no"),
    "deliver": lambda d, staff, colleague: workflow.deliver(
        staff, d, d.project.client.contacts[:1], Policy.PARALLEL, future()),
}
LEGAL = {
    ("submit", S.DRAFT), ("review", S.IN_REVIEW), ("send_back", S.IN_REVIEW),
    ("deliver", S.READY),
}
ILLEGAL = [(a, s) for a in ACTIONS for s in S if (a, s) not in LEGAL]


@pytest.mark.parametrize(("action", "state"), ILLEGAL, ids=[f"{a}-from-{s}" for a, s in ILLEGAL])
def test_every_illegal_move_is_refused(make_deliverable, staff, colleague, action, state):
    d = make_deliverable(state)
    requests_before = db.session.query(ReviewRequest).count()
    with pytest.raises((IllegalTransition, Incomplete)):
        ACTIONS[action](d, staff, colleague)
    db.session.rollback()
    db.session.refresh(d)
    assert d.state == state
    assert db.session.query(ReviewRequest).count() == requests_before


def test_delivery_lists_every_missing_piece_at_once(make_deliverable, staff):
    d = make_deliverable(S.IN_REVIEW)
    d.description = ""
    no_email = Contact(client=d.project.client, name="Nomail Person", email=None)
    db.session.add(no_email)
    db.session.flush()
    with pytest.raises(Incomplete) as caught:
        workflow.deliver(staff, d, [no_email], Policy.PARALLEL, today_utc())
    assert caught.value.missing == [
        "an internal review of the current version",
        "a description of the deliverable",
        "an email address for Nomail Person",
        "a due date in the future",
    ]
    with pytest.raises(Incomplete) as caught:
        workflow.deliver(staff, d, [], Policy.PARALLEL, None)
    assert "at least one approver" in caught.value.missing
    assert "a due date" in caught.value.missing


def test_deliver_refuses_another_clients_contacts(make_deliverable, make_client, staff):
    d = make_deliverable(S.READY)
    stranger = make_client().contacts[0]
    with pytest.raises(NotAllowed, match="contacts of"):
        workflow.deliver(staff, d, [stranger], Policy.PARALLEL, future())
    assert d.state == S.READY


def test_delivering_writes_one_email_per_invited_approver(make_deliverable, staff):
    d = make_deliverable(S.READY)
    contacts = d.project.client.contacts
    workflow.deliver(staff, d, contacts, Policy.PARALLEL, future())
    db.session.commit()
    invites = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.subject.contains(": please review "))).all()
    assert sorted(m.to_addr for m in invites) == sorted(c.email for c in contacts)
    assert all("http://portal.test/r/" in m.body_text for m in invites)
    assert all(m.reply_to == d.owner.email for m in invites)


def test_sequential_invites_the_next_only_after_approval(make_deliverable):
    d = make_deliverable(S.DELIVERED, policy=Policy.SEQUENTIAL, approvers=2)
    first, second = d.open_request.approvers
    assert (first.status, second.status) == (ApproverStatus.INVITED, ApproverStatus.QUEUED)
    with pytest.raises(IllegalTransition, match="not your turn"):
        workflow.record_decision(second, Outcome.APPROVED, seen_sha256=on_screen(second))
    db.session.rollback()
    workflow.record_decision(first, Outcome.APPROVED, seen_sha256=on_screen(first))
    assert second.status == ApproverStatus.INVITED
    assert d.state == S.DELIVERED
    workflow.record_decision(second, Outcome.APPROVED_WITH_CONDITIONS, "Swap the photo",
                             seen_sha256=on_screen(second))
    db.session.commit()
    assert d.state == S.APPROVED_WITH_CONDITIONS


def test_parallel_needs_everyone_and_any_rejection_ends_it(make_deliverable):
    d = make_deliverable(S.DELIVERED, approvers=2)
    request = d.open_request
    first, second = request.approvers
    workflow.record_decision(first, Outcome.APPROVED, seen_sha256=on_screen(first))
    assert d.state == S.DELIVERED
    with pytest.raises(InvalidInput, match="what should change"):
        workflow.record_decision(second, Outcome.REJECTED, "", seen_sha256=on_screen(second))
    workflow.record_decision(second, Outcome.REJECTED, "Off brand", seen_sha256=on_screen(second))
    db.session.commit()
    assert request.status == RequestStatus.CHANGES_REQUESTED
    assert d.state == S.CHANGES_REQUESTED
    assert d.current_version.locked_at is None


def test_a_decision_cannot_be_recorded_twice(make_deliverable):
    d = make_deliverable(S.DELIVERED, approvers=2)
    approver = d.open_request.approvers[0]
    workflow.record_decision(approver, Outcome.APPROVED, seen_sha256=on_screen(approver))
    db.session.commit()
    with pytest.raises(workflow.AlreadyDecided):
        workflow.record_decision(approver, Outcome.REJECTED, "changed my mind",
                                 seen_sha256=on_screen(approver))


def test_approved_version_is_locked_against_any_change(make_deliverable, staff):
    d = make_deliverable(S.APPROVED)
    version = d.current_version
    original = version.sha256
    version.sha256 = "0" * 64
    with pytest.raises(IllegalTransition, match="locked"):
        db.session.flush()
    db.session.rollback()
    version.locked_at = None
    with pytest.raises(IllegalTransition, match="locked"):
        db.session.flush()
    db.session.rollback()
    db.session.delete(version)
    with pytest.raises(IllegalTransition, match="locked"):
        db.session.flush()
    db.session.rollback()
    assert db.session.get(type(version), version.id).sha256 == original


def test_new_version_after_approval_keeps_the_old_one_locked(make_deliverable, staff):
    d = make_deliverable(S.APPROVED)
    approved = d.current_version
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf("v2")), "homepage-v2.pdf", "Round 2")
    db.session.commit()
    assert d.state == S.DRAFT
    assert [v.number for v in d.versions] == [1, 2]
    assert approved.locked_at is not None and d.current_version.locked_at is None


def test_upload_is_refused_while_out_with_the_client(make_deliverable, staff):
    d = make_deliverable(S.DELIVERED)
    with pytest.raises(IllegalTransition, match="Cancel it"):
        workflow.upload_version(staff, d, io.BytesIO(sample_pdf()), "x.pdf", "")


def test_cancel_returns_to_ready_and_withdraws_approvers(make_deliverable, staff):
    d = make_deliverable(S.DELIVERED)
    request = d.open_request
    generation = request.approvers[0].link_generation
    workflow.cancel_request(staff, request)
    db.session.commit()
    assert request.status == RequestStatus.CANCELLED and d.state == S.READY
    assert request.approvers[0].status == ApproverStatus.WITHDRAWN
    assert request.approvers[0].link_generation == generation + 1


def test_finance_cannot_change_work(make_deliverable, make_user):
    finance = make_user(Role.FINANCE)
    d = make_deliverable(S.DRAFT)
    with pytest.raises(NotAllowed):
        workflow.submit_for_review(finance, d)
    with pytest.raises(NotAllowed):
        workflow.create_deliverable(finance, d.project, "x", "y", None)


def test_illegal_move_over_http_is_a_clear_409(browser, make_deliverable, staff):
    d = make_deliverable(S.DRAFT)
    browser.login(staff.email)
    response = browser.post(f"/deliverables/{d.id}/deliver", {"policy": "parallel"})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "This cannot go out yet" in page and "an internal review of the current version" in page
    assert "at least one approver" in page and "a due date" in page


def test_whose_turn(make_deliverable, colleague):
    assert workflow.whose_turn(make_deliverable(S.IN_REVIEW)).label == \
        f"Internal review by {colleague.name}"
    d = make_deliverable(S.DELIVERED, policy=Policy.SEQUENTIAL, approvers=2)
    turn = workflow.whose_turn(d)
    assert turn.side == "client"
    assert turn.label == f"Waiting for {d.open_request.approvers[0].contact.name}"
    assert workflow.whose_turn(make_deliverable(S.APPROVED)).side == "done"
