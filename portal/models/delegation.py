"""A hand-over: an approver says "I'm not the right person" and names a colleague, who then
decides in their place (portal/workflow/delegation.py)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Choice, UTCDateTime, choice_column, utcnow
from portal.models.people import User
from portal.models.review import Approver, ReviewRequest


class DelegationStatus(Choice):
    REQUESTED = "requested"  # asked by the approver; staff have yet to confirm it
    CONFIRMED = "confirmed"  # the colleague decides now (decided_by None: the client allows it)
    DECLINED = "declined"  # staff kept the approver


PENDING = text("status = 'requested'")


class Delegation(db.Model):
    __tablename__ = "delegations"
    __table_args__ = (
        # One hand-over waiting per approver.
        Index("ux_delegations_pending", "from_approver_id", unique=True,
              postgresql_where=PENDING, sqlite_where=PENDING),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("review_requests.id"), index=True)
    from_approver_id: Mapped[int] = mapped_column(ForeignKey("approvers.id"), index=True)
    # The colleague as the approver typed them.
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[DelegationStatus] = mapped_column(
        choice_column(DelegationStatus, "delegation_status"), default=DelegationStatus.REQUESTED)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Staff who confirmed or declined it; None when the client's setting let it through.
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The approver the colleague became (confirmed only).
    to_approver_id: Mapped[int | None] = mapped_column(ForeignKey("approvers.id"))

    request: Mapped[ReviewRequest] = relationship()
    from_approver: Mapped[Approver] = relationship(foreign_keys=[from_approver_id])
    to_approver: Mapped[Approver | None] = relationship(foreign_keys=[to_approver_id])
    decided_by: Mapped[User | None] = relationship()

    @property
    def pending(self) -> bool:
        return self.status == DelegationStatus.REQUESTED
