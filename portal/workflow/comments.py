"""The comment thread beside a document: clients and staff, plus staff-only notes."""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from portal import audit
from portal.database import lock_row
from portal.errors import IllegalTransition, InvalidInput
from portal.extensions import db
from portal.models import Comment, Contact, RequestStatus, ReviewRequest, User, utcnow
from portal.permissions import require_staff
from portal.workflow.on_screen import check_on_screen
from portal.workflow.pins import Pin, check_pin
from portal.workflow.seen import mark_seen

MAX_COMMENT = 5000


def post_comment(author: User | Contact, request: ReviewRequest, body: str,
                 *, seen_sha256: str | None = None, internal: bool = False,
                 pin: Pin | None = None, now: datetime | None = None) -> Comment:
    """A contact's comment must name the version on their screen (`seen_sha256`); staff
    comment from the deliverable's own page, where there is only one request to mean.
    A comment is stored against the request's version, pinned to a spot when `pin`."""
    # Lock the request first, in the same order as a decision does, so a comment and a
    # decision on one request never wait on each other in opposite orders.
    request = lock_row(ReviewRequest, request.id)
    body = (body or "").strip()
    if not body:
        raise InvalidInput(_("Write a comment first."))
    if len(body) > MAX_COMMENT:
        raise InvalidInput(_("Comments can be at most %(max)s characters (this one has "
                                 "%(length)s).", max=MAX_COMMENT, length=len(body)))
    if pin is not None:
        check_pin(pin, request.version_id)
    if isinstance(author, User):
        require_staff(author)
        comment = Comment(request=request, author_user=author, body=body, internal=internal)
    else:
        if internal:
            raise IllegalTransition(_("Only staff can write internal notes."))
        check_on_screen(request, author, seen_sha256)
        if request.status != RequestStatus.OPEN:
            raise IllegalTransition(_("This request is %(status)s; it takes no more comments.",
                                      status=request.status.label))
        comment = Comment(request=request, author_contact=author, body=body)
    comment.version_id = request.version_id
    if pin is not None:
        comment.page, comment.x, comment.y, comment.w, comment.h = (
            pin.page, pin.x, pin.y, pin.w, pin.h)
    db.session.add(comment)
    request.version.deliverable.last_activity_at = now or utcnow()
    if isinstance(author, User):  # replying means the client's comments were read
        mark_seen(author, request.version.deliverable_id, now or utcnow())
    audit.record(author, "comment.internal" if internal else "comment.posted", comment,
                 deliverable=request.version.deliverable, length=len(body),
                 page=comment.page)
    return comment


# Built once (the request bound per call): the client's review page reads it per view.
_CLIENT_THREAD = (
    select(Comment).where(Comment.request_id == bindparam("request_id"),
                          Comment.internal.is_(False))
    .order_by(Comment.id)
    .options(joinedload(Comment.author_user), joinedload(Comment.author_contact)))


def client_thread(request_id: int) -> list[Comment]:
    """What the client sees of a request's thread: everything but internal notes, with
    their authors (one statement)."""
    return list(db.session.scalars(_CLIENT_THREAD, {"request_id": request_id}))
