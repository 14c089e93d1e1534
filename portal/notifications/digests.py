"""One daily email per owner with the clients' new comments, instead of one per comment."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.models import Comment, Deliverable, ReviewRequest, User, Version
from portal.notifications.compose import compose


def send_comment_digests(now: datetime) -> int:
    """Digest every client comment not yet digested, in the caller's transaction; returns
    how many emails were written."""
    comments = db.session.scalars(
        select(Comment).where(Comment.digested_at.is_(None), Comment.internal.is_(False),
                              Comment.author_contact_id.is_not(None))
        .order_by(Comment.id)
        .options(selectinload(Comment.author_contact),
                 selectinload(Comment.request).selectinload(ReviewRequest.version)
                 .selectinload(Version.deliverable).selectinload(Deliverable.owner))
    ).all()
    by_owner: dict[User, dict[Deliverable, list[Comment]]] = defaultdict(lambda: defaultdict(list))
    for comment in comments:
        deliverable = comment.request.version.deliverable
        by_owner[deliverable.owner][deliverable].append(comment)
    for owner, threads in by_owner.items():
        newest = max(c.id for items in threads.values() for c in items)
        compose(
            to_addr=owner.email, to_name=owner.name, template="comment_digest",
            idempotency_key=f"digest:{owner.id}:{newest}", threads=threads,
            count=sum(len(items) for items in threads.values()),
        )
    for comment in comments:
        comment.digested_at = now
    return len(by_owner)
