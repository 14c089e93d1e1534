"""What each staff member has read of the client's comments, per deliverable.

One row per (person, deliverable) holding the newest client comment id they have seen:
comment ids only grow, so "unseen" is every client comment above it. Rows are upserted
(portal/workflow/seen.py) and never move backwards.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow


class CommentSeenMark(db.Model):
    __tablename__ = "comment_seen_marks"
    # Also the index the dashboard's unseen count looks a person's marks up by.
    __table_args__ = (UniqueConstraint("user_id", "deliverable_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    deliverable_id: Mapped[int] = mapped_column(ForeignKey("deliverables.id"))
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id"))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
