"""Owners get one daily digest of client comments, not an email per comment."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from portal.extensions import db
from portal.models import Comment, DeliverableState, OutboxMessage
from portal.notifications import digests
from portal.workflow.comments import post_comment
from tests.conftest import on_screen


def _digests() -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.subject.contains("new client comment"))))


def test_comments_are_digested_once_per_owner(app, make_deliverable, staff, colleague):
    first = make_deliverable(DeliverableState.DELIVERED, approvers=2)
    second = make_deliverable(DeliverableState.DELIVERED)
    jane, john = first.open_request.approvers
    post_comment(jane.contact, first.open_request, "Love the colours", seen_sha256=on_screen(jane))
    post_comment(john.contact, first.open_request, "Logo too small", seen_sha256=on_screen(john))
    post_comment(second.open_request.approvers[0].contact, second.open_request, "Typo in title",
                 seen_sha256=second.current_version.sha256)
    post_comment(staff, first.open_request, "Our reply")
    post_comment(staff, first.open_request, "Internal: check with design", internal=True)
    db.session.commit()
    before = len(db.session.scalars(select(OutboxMessage)).all())

    assert digests.send_comment_digests(datetime(2026, 12, 1, 8, tzinfo=UTC)) == 1
    [digest] = _digests()
    assert digest.to_addr == staff.email
    assert digest.subject == "3 new client comments on your deliverables"
    for text in ("Love the colours", "Logo too small", "Typo in title"):
        assert text in digest.body_text
    assert "Our reply" not in digest.body_text and "Internal" not in digest.body_text
    assert len(db.session.scalars(select(OutboxMessage)).all()) == before + 1

    # The next day nothing new: no second digest, and the comments are marked.
    assert digests.send_comment_digests(datetime(2026, 12, 2, 8, tzinfo=UTC)) == 0
    assert len(_digests()) == 1
    assert all(c.digested_at for c in db.session.scalars(
        select(Comment).where(Comment.author_contact_id.is_not(None))))


def test_posting_a_comment_sends_no_email_by_itself(app, make_deliverable):
    d = make_deliverable(DeliverableState.DELIVERED)
    before = db.session.scalars(select(OutboxMessage.id)).all()
    post_comment(d.open_request.approvers[0].contact, d.open_request, "Hello",
                 seen_sha256=d.current_version.sha256)
    db.session.commit()
    assert db.session.scalars(select(OutboxMessage.id)).all() == before
