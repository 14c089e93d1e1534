"""Deliverables, their versions, and internal reviews."""
from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Choice, UTCDateTime, choice_column, utcnow
from portal.models.people import Project, User

if TYPE_CHECKING:
    from portal.models.review import ReviewRequest


class DeliverableState(Choice):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    READY = "ready"
    DELIVERED = "delivered"
    APPROVED = "approved"
    APPROVED_WITH_CONDITIONS = "approved_with_conditions"
    CHANGES_REQUESTED = "changes_requested"


APPROVED_STATES = frozenset({DeliverableState.APPROVED, DeliverableState.APPROVED_WITH_CONDITIONS})


class ReviewOutcome(Choice):
    APPROVED = "approved"
    SENT_BACK = "sent_back"


# The dashboard's sections by state (portal/reports/board.py): name, WHERE, order. The
# conditions are written as each dialect writes them, or the planner skips the index.
BOARD_INDEXES = [
    ("overdue", text("state = 'delivered'"), ("due_date", "id")),
    ("rejected", text("state = 'changes_requested'"), ("last_activity_at", "id")),
    ("in_review", text("state = 'in_review'"), ("last_activity_at", "id")),
    ("to_move", text("state IN ('draft', 'ready')"), ("last_activity_at", "id")),
    ("approved", text("state IN ('approved', 'approved_with_conditions')"),
     ("last_activity_at", "id")),
]


class Deliverable(db.Model):
    __tablename__ = "deliverables"
    __table_args__ = (
        # The dashboard's sections (bench/dashboard.py at 1M rows shows why).
        Index("ix_deliverables_state_last_activity_at", "state", "last_activity_at"),
        Index("ix_deliverables_state_due_date_id", "state", "due_date", "id"),
        Index("ix_deliverables_last_activity_at", "last_activity_at"),
        # One partial index per dashboard section, in the section's order: its first rows
        # are the section's, and a person's ("mine") are told apart from the index alone.
        *(Index(f"ix_deliverables_board_{name}", *order, postgresql_where=where,
                sqlite_where=where, postgresql_include=["owner_id", "reviewer_id"])
          for name, where, order in BOARD_INDEXES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[DeliverableState] = mapped_column(
        choice_column(DeliverableState, "deliverable_state"),
        default=DeliverableState.DRAFT,
    )
    due_date: Mapped[date | None] = mapped_column(Date)
    # The one owner: who acts on it and who is told and chased (decisions, comments,
    # escalations, expiry). Copied from the project's owner when it is created.
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # The colleague asked for the internal review of the current version.
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    project: Mapped[Project] = relationship(back_populates="deliverables")
    owner: Mapped[User] = relationship(foreign_keys=[owner_id])
    reviewer: Mapped[User | None] = relationship(foreign_keys=[reviewer_id])
    versions: Mapped[list[Version]] = relationship(
        back_populates="deliverable", order_by="Version.number"
    )

    @property
    def current_version(self) -> Version | None:
        return self.versions[-1] if self.versions else None

    @property
    def requests(self) -> list[ReviewRequest]:
        return [r for v in reversed(self.versions) for r in reversed(v.requests)]

    @property
    def open_request(self) -> ReviewRequest | None:
        from portal.models.review import RequestStatus

        return next((r for r in self.requests if r.status == RequestStatus.OPEN), None)


class Version(db.Model):
    """One uploaded file. Immutable once locked by an approval."""

    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("deliverable_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deliverable_id: Mapped[int] = mapped_column(ForeignKey("deliverables.id"), index=True)
    number: Mapped[int]
    file_name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255))
    what_changed: Mapped[str] = mapped_column(Text, default="")
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    deliverable: Mapped[Deliverable] = relationship(back_populates="versions")
    uploaded_by: Mapped[User] = relationship()
    reviews: Mapped[list[InternalReview]] = relationship(
        back_populates="version", order_by="InternalReview.id"
    )
    requests: Mapped[list[ReviewRequest]] = relationship(
        back_populates="version", order_by="ReviewRequest.id"
    )

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None

    @property
    def internal_approval(self) -> InternalReview | None:
        return next((r for r in self.reviews if r.outcome == ReviewOutcome.APPROVED), None)


# Columns that define what was approved; a locked version refuses changes to them.
VERSION_CONTENT_FIELDS = (
    "number", "file_name", "media_type", "size", "sha256", "storage_key", "what_changed",
    "deliverable_id",
)


class InternalReview(db.Model):
    __tablename__ = "internal_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[ReviewOutcome] = mapped_column(choice_column(ReviewOutcome, "review_outcome"))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    version: Mapped[Version] = relationship(back_populates="reviews")
    reviewer: Mapped[User] = relationship()
