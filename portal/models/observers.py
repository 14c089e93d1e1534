"""Observers (CC): contacts a request keeps informed, who may look (and, when staff allow
it, comment) but never decide.

They live apart from the approvers on purpose: no policy, turn, reminder or count reads
this table. Their links are signed, expiring and revocable like an approver's, with a
purpose of their own (portal/workflow/observers.py).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow
from portal.models.people import Contact, User
from portal.models.review import ReviewRequest, new_public_id


class Observer(db.Model):
    __tablename__ = "observers"
    # One place per contact on a request; it also serves lookups by request.
    __table_args__ = (UniqueConstraint("request_id", "contact_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("review_requests.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    # Opaque id carried by the observer's link, never the row id or the email.
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    link_generation: Mapped[int] = mapped_column(default=1)
    link_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    link_revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    may_comment: Mapped[bool] = mapped_column(default=False, server_default=false())
    added_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_viewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    request: Mapped[ReviewRequest] = relationship(
        backref=backref("observers", order_by="Observer.id"))
    contact: Mapped[Contact] = relationship()
    added_by: Mapped[User] = relationship()
