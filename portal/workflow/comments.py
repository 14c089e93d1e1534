"""The comment thread beside a document: clients and staff, plus staff-only notes."""
from __future__ import annotations

from portal import audit
from portal.directory import require_staff
from portal.errors import IllegalTransition, InvalidInput
from portal.extensions import db
from portal.models import Comment, Contact, RequestStatus, ReviewRequest, User, utcnow
from portal.rows import lock_row

MAX_COMMENT = 5000


def post_comment(author: User | Contact, request: ReviewRequest, body: str,
                 *, internal: bool = False) -> Comment:
    # Lock the request first, in the same order as a decision does, so a comment and a
    # decision on one request never wait on each other in opposite orders.
    request = lock_row(ReviewRequest, request.id)
    body = (body or "").strip()
    if not body:
        raise InvalidInput("Write a comment first.")
    if len(body) > MAX_COMMENT:
        raise InvalidInput(f"Comments can be at most {MAX_COMMENT} characters "
                           f"(this one has {len(body)}).")
    if isinstance(author, User):
        require_staff(author)
        comment = Comment(request=request, author_user=author, body=body, internal=internal)
    else:
        if internal:
            raise IllegalTransition("Only staff can write internal notes.")
        if request.status != RequestStatus.OPEN:
            raise IllegalTransition(f"This request is {request.status.label}; it takes no more "
                                    "comments.")
        comment = Comment(request=request, author_contact=author, body=body)
    db.session.add(comment)
    request.version.deliverable.last_activity_at = utcnow()
    audit.record(author, "comment.internal" if internal else "comment.posted", comment,
                 deliverable=request.version.deliverable, length=len(body))
    return comment
