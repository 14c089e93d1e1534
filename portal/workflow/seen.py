"""Which client comments a staff member has not seen yet, and marking them seen.

Only the client's comments count (Comment.is_client_point): a person's own replies,
notes and actions never make a deliverable "new" for anyone. A mark only moves forward,
so a stale tab's beacon cannot make read comments unread again.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db
from portal.models import Comment, ReviewRequest, User, Version
from portal.models.seen import CommentSeenMark


@dataclass(frozen=True)
class Unseen:
    count: int
    first_id: int  # the oldest unseen comment: where reading starts
    newest_id: int  # what "Mark as read" marks up to


def _client_comments(*columns: Any) -> Select:
    """Client comments, each joined to its deliverable (Version.deliverable_id)."""
    return (select(*columns).select_from(Comment)
            .join(ReviewRequest, Comment.request_id == ReviewRequest.id)
            .join(Version, ReviewRequest.version_id == Version.id)
            .where(Comment.is_client_point))


def unseen(user: User, deliverable_ids: Collection[int]) -> dict[int, Unseen]:
    """Unseen client comments per deliverable for this person, in one query however many
    deliverables (those with none are left out)."""
    if not deliverable_ids:
        return {}
    mark = CommentSeenMark
    rows = db.session.execute(
        _client_comments(Version.deliverable_id, func.count(Comment.id),
                         func.min(Comment.id), func.max(Comment.id))
        .outerjoin(mark, and_(mark.deliverable_id == Version.deliverable_id,
                              mark.user_id == user.id))
        .where(Version.deliverable_id.in_(list(deliverable_ids)),
               Comment.id > func.coalesce(mark.comment_id, 0))
        .group_by(Version.deliverable_id)).all()
    return {d: Unseen(count, first, newest) for d, count, first, newest in rows}


def mark_seen(user: User, deliverable_id: int, now: datetime,
              up_to: int | None = None) -> int | None:
    """Mark the deliverable's client comments seen, up to comment `up_to` (what the
    person's page showed) or all of them; returns the comment id marked, if any.

    In the caller's transaction; safe when two tabs mark at once (one upsert)."""
    newest = db.session.scalar(
        _client_comments(func.max(Comment.id))
        .where(Version.deliverable_id == deliverable_id,
               *([Comment.id <= up_to] if up_to is not None else [])))
    if newest is None:
        return None
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    insert = dialect.insert(CommentSeenMark).values(
        user_id=user.id, deliverable_id=deliverable_id, comment_id=newest, seen_at=now)
    later = insert.excluded.comment_id > CommentSeenMark.comment_id
    db.session.execute(insert.on_conflict_do_update(
        index_elements=[CommentSeenMark.user_id, CommentSeenMark.deliverable_id],
        set_={"comment_id": case((later, insert.excluded.comment_id),
                                 else_=CommentSeenMark.comment_id),
              "seen_at": now}))
    return newest
