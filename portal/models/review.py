"""What is sent to the client: requests, approvers, comments and decisions."""
from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from flask_babel import gettext
from sqlalchemy import (
    Date,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    and_,
    false,
    or_,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_method, hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Choice, UTCDateTime, choice_column, utcnow
from portal.models.people import Contact, User
from portal.models.work import Version

if TYPE_CHECKING:
    from portal.models.conditions import Condition
    from portal.models.records import Certificate


class Policy(Choice):
    """Who is asked and how many approvals it takes (the rule: workflow/policies.py)."""

    PARALLEL = "parallel"  # everyone at once; all must approve
    SEQUENTIAL = "sequential"  # one after another; all must approve
    ANY_ONE = "any_one"  # everyone at once; the first approval decides
    AT_LEAST = "at_least"  # everyone at once; K approvals decide (required_approvals)
    # label: short names (models/labels.py); the full words: workflow.policies.describe().


class RequestStatus(Choice):
    OPEN = "open"
    APPROVED = "approved"
    APPROVED_WITH_CONDITIONS = "approved_with_conditions"
    CHANGES_REQUESTED = "changes_requested"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


APPROVED_STATUSES = frozenset({RequestStatus.APPROVED, RequestStatus.APPROVED_WITH_CONDITIONS})


class ApproverStatus(Choice):
    QUEUED = "queued"  # sequential: not their turn yet
    INVITED = "invited"  # their turn; a link has been sent
    APPROVED = "approved"
    APPROVED_WITH_CONDITIONS = "approved_with_conditions"
    REJECTED = "rejected"  # stored as before; said as "changes requested"
    WITHDRAWN = "withdrawn"  # the request closed before they decided
    DELEGATED = "delegated"  # handed over to a colleague (workflow/delegation.py)
    # label (models/labels.py): 'rejected' reads "changes requested", 'delegated' "handed over"


class Outcome(Choice):
    APPROVED = "approved"
    APPROVED_WITH_CONDITIONS = "approved_with_conditions"
    # The stored value (and webhooks' "outcome") stays 'rejected' so data and receivers
    # keep working; people read and click "changes requested" / "Request changes".
    REJECTED = "rejected"


class RejectionScope(Choice):
    """The agency's billing question about requested changes, answered by staff."""

    IN_SCOPE = "in_scope"
    CHANGE_REQUEST = "change_request"


class IdentityCheck(Choice):
    """How the person deciding showed they are the approver."""

    LINK = "link"  # held the personal link emailed to the address on file
    EMAIL_CODE = "email_code"  # and typed a one-time code emailed to that address
    ON_BEHALF = "on_behalf"  # gave it by phone, meeting …; staff recorded it (models/on_behalf.py)


def new_public_id() -> str:
    return secrets.token_urlsafe(16)


OPEN_NOT_ESCALATED = text("status = 'open' AND escalated_at IS NULL")
OPEN_ONLY = text("status = 'open'")


class ReviewRequest(db.Model):
    __tablename__ = "review_requests"
    __table_args__ = (
        Index("ix_review_requests_overdue", "due_date",
              postgresql_where=OPEN_NOT_ESCALATED, sqlite_where=OPEN_NOT_ESCALATED),
        Index("ix_review_requests_open_sent_at", "sent_at",
              postgresql_where=OPEN_ONLY, sqlite_where=OPEN_ONLY),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), index=True)
    policy: Mapped[Policy] = mapped_column(choice_column(Policy, "policy"))
    # K for "at least K of N" (1 for "any one of"); None: every approver (N).
    required_approvals: Mapped[int | None]
    # One request for changes ends the request at once, even while K approvals are still
    # possible ("any one of" offers the choice; with K = N it makes no difference).
    changes_end_request: Mapped[bool] = mapped_column(default=False, server_default=false())
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[RequestStatus] = mapped_column(
        choice_column(RequestStatus, "request_status"), default=RequestStatus.OPEN, index=True
    )
    link_ttl_days: Mapped[int] = mapped_column(default=14)
    # Step-up: a decision needs a one-time code emailed to the approver's address.
    require_code: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Reminder policy, copied from the settings' defaults when the request is made.
    reminder_first_after_days: Mapped[int] = mapped_column(default=2, server_default="2")
    reminder_every_days: Mapped[int] = mapped_column(default=2, server_default="2")
    reminder_max: Mapped[int] = mapped_column(default=5, server_default="5")
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    version: Mapped[Version] = relationship(back_populates="requests")
    sent_by: Mapped[User] = relationship()
    # Who decides: an approver who handed over to a colleague (DELEGATED) is left out, so
    # every count, turn and list reads the colleague in their place; all_approvers has both.
    approvers: Mapped[list[Approver]] = relationship(
        back_populates="request", order_by="Approver.position",
        primaryjoin=lambda: and_(ReviewRequest.id == Approver.request_id,
                                 Approver.status != ApproverStatus.DELEGATED),
    )
    all_approvers: Mapped[list[Approver]] = relationship(
        order_by="(Approver.position, Approver.id)", viewonly=True)
    comments: Mapped[list[Comment]] = relationship(
        back_populates="request", order_by="Comment.id"
    )
    certificate: Mapped[Certificate | None] = relationship(
        primaryjoin="ReviewRequest.id == foreign(Certificate.request_id)", viewonly=True,
        uselist=False,
    )

    @hybrid_method
    def past_due(self, today: date) -> bool:
        return self.due_date < today

    @hybrid_method
    def overdue(self, today: date) -> bool:
        """Late: past its due date, or escalated after the last reminder went unanswered."""
        return self.escalated_at is not None or self.due_date < today

    @overdue.expression  # type: ignore[no-redef]
    def overdue(cls, today: date) -> Any:
        return or_(cls.escalated_at.is_not(None), cls.due_date < today)

    @property
    def waiting_on(self) -> list[Approver]:
        return [a for a in self.approvers if a.status == ApproverStatus.INVITED]


INVITED_ONLY = text("status = 'invited'")


class Approver(db.Model):
    __tablename__ = "approvers"
    __table_args__ = (
        UniqueConstraint("request_id", "contact_id"),
        # The sweep's two questions, answered from small partial indexes.
        Index("ix_approvers_due", "next_reminder_at", "id",
              postgresql_where=INVITED_ONLY, sqlite_where=INVITED_ONLY),
        Index("ix_approvers_link_expiry", "link_expires_at",
              postgresql_where=INVITED_ONLY, sqlite_where=INVITED_ONLY),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No index of its own: the unique (request_id, contact_id) index serves lookups by it.
    request_id: Mapped[int] = mapped_column(ForeignKey("review_requests.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    position: Mapped[int]
    # Opaque id carried by magic links, never the row id or the email.
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    link_generation: Mapped[int] = mapped_column(default=1)
    status: Mapped[ApproverStatus] = mapped_column(
        choice_column(ApproverStatus, "approver_status"), default=ApproverStatus.QUEUED
    )
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_viewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Staff revoked the link: no reminder may send a new one until staff resend it.
    link_revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the newest emailed link stops working; renewed by every email that carries one.
    link_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminders_sent: Mapped[int] = mapped_column(default=0, server_default="0")
    # The language this approver switched to on their page (None: their contact's).
    language: Mapped[str | None] = mapped_column(String(8))

    request: Mapped[ReviewRequest] = relationship(back_populates="approvers")
    contact: Mapped[Contact] = relationship()
    decision: Mapped[Decision | None] = relationship(back_populates="approver")

    @property
    def awaiting_decision(self) -> bool:
        """Their request is open and they have yet to decide (now or in their turn)."""
        return (self.request.status == RequestStatus.OPEN
                and self.status in (ApproverStatus.INVITED, ApproverStatus.QUEUED))

    @property
    def deciding_now(self) -> bool:
        """Their request is open and it is their turn: they may decide now."""
        return (self.request.status == RequestStatus.OPEN
                and self.status == ApproverStatus.INVITED)


class Decision(db.Model):
    """An explicit click by a named person, bound to the exact file decided on."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # One decision per approver (and an approver belongs to one request).
    approver_id: Mapped[int] = mapped_column(ForeignKey("approvers.id"), unique=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("review_requests.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    version_sha256: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[Outcome] = mapped_column(choice_column(Outcome, "decision_outcome"))
    text: Mapped[str] = mapped_column(Text, default="")
    # Changes requested: within the original scope or a change request. Staff classify it
    # (workflow/classification.py); before migration 0017 the client chose, and such rows
    # keep their value with no classified_at: not a staff classification.
    scope: Mapped[RejectionScope | None] = mapped_column(
        choice_column(RejectionScope, "rejection_scope")
    )
    classified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    classified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    classification_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    identity: Mapped[IdentityCheck] = mapped_column(
        choice_column(IdentityCheck, "identity_check"), default=IdentityCheck.LINK,
        server_default=IdentityCheck.LINK.value)

    approver: Mapped[Approver] = relationship(back_populates="decision")
    classified_by: Mapped[User | None] = relationship()
    # Approved with conditions: each condition a tracked item (text is then a note).
    conditions: Mapped[list[Condition]] = relationship(
        back_populates="decision", order_by="Condition.position")

    @property
    def classification(self) -> RejectionScope | None:
        """Staff's answer to the billing question; None until staff classify (a client's
        own answer from before 0017 is not one)."""
        return self.scope if self.classified_at is not None else None


class DecisionCode(db.Model):
    """A one-time code emailed to an approver before a decision. Only its keyed hash is
    kept; it is good for a few tries within minutes, and once."""

    __tablename__ = "decision_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    approver_id: Mapped[int] = mapped_column(ForeignKey("approvers.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tries: Mapped[int] = mapped_column(default=0, server_default="0")
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # by a decision


class PointStatus(Choice):
    """How a client's comment (a "point") stands in later versions."""

    OPEN = "open"
    ADDRESSED = "addressed"
    WONT_CHANGE = "wont_change"


# Each as its dialect writes `~Comment.internal`, or the planner skips the index.
TO_NOTIFY_PG = text("notified_at IS NULL AND NOT internal")
TO_NOTIFY_SQLITE = text("notified_at IS NULL AND internal = 0")


class Comment(db.Model):
    __tablename__ = "comments"
    # The minute sweep's question, answered from a partial index of what is still unsent.
    __table_args__ = (
        Index("ix_comments_to_notify", "created_at",
              postgresql_where=TO_NOTIFY_PG, sqlite_where=TO_NOTIFY_SQLITE),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("review_requests.id"), index=True)
    author_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The version it was made on, and where on it: a page, and optionally a spot (x, y) or
    # a box (x, y, w, h) as fractions of the page, so a pin survives zoom and resolution.
    version_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"))
    page: Mapped[int | None]
    x: Mapped[float | None] = mapped_column(Float)
    y: Mapped[float | None] = mapped_column(Float)
    w: Mapped[float | None] = mapped_column(Float)
    h: Mapped[float | None] = mapped_column(Float)
    # Set once the comment went out to the other side (portal/notifications/conversation.py):
    # a client's to the deliverable's owner, a staff reply to the approvers.
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A client's point, followed across versions: addressed in a later version (with an
    # optional note) or won't change (with a reason the client sees); reopened as open.
    resolution_status: Mapped[PointStatus] = mapped_column(
        choice_column(PointStatus, "point_status"), default=PointStatus.OPEN,
        server_default=PointStatus.OPEN.value)
    resolved_in_version_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"))
    resolution_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    request: Mapped[ReviewRequest] = relationship(back_populates="comments")
    author_contact: Mapped[Contact | None] = relationship()
    author_user: Mapped[User | None] = relationship(foreign_keys=[author_user_id])
    version: Mapped[Version | None] = relationship(foreign_keys=[version_id], viewonly=True)
    resolved_in_version: Mapped[Version | None] = relationship(
        foreign_keys=[resolved_in_version_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])

    @property
    def pinned(self) -> bool:
        return self.page is not None

    @property
    def author_name(self) -> str:
        author = self.author_user or self.author_contact
        return author.name if author else gettext("Unknown")

    @hybrid_property
    def is_client_point(self) -> bool:
        """Written by the client (not a staff reply, never an internal note)."""
        return self.author_contact_id is not None and not self.internal

    @is_client_point.inplace.expression
    @classmethod
    def _is_client_point_expression(cls) -> Any:
        return and_(cls.author_contact_id.is_not(None), cls.internal.is_(False))

    @property
    def point_open(self) -> bool:
        return self.resolution_status == PointStatus.OPEN

    @property
    def resolution(self) -> str:
        """How the point stands, in words a client reads: open, addressed in version 3: …,
        won't change: …"""
        note = self.resolution_note
        if self.resolution_status == PointStatus.ADDRESSED:
            version = self.resolved_in_version
            if version and note:
                return gettext("addressed in version %(n)s: %(note)s", n=version.number,
                               note=note)
            if version:
                return gettext("addressed in version %(n)s", n=version.number)
            return gettext("addressed: %(note)s", note=note) if note else gettext("addressed")
        if self.resolution_status == PointStatus.WONT_CHANGE:
            return gettext("won't change: %(note)s", note=note)
        return PointStatus.OPEN.label


class Reminder(db.Model):
    """One reminder, once: two sweeps racing for the same one collide on the key."""

    __tablename__ = "reminders"
    __table_args__ = (UniqueConstraint("approver_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    approver_id: Mapped[int] = mapped_column(ForeignKey("approvers.id"))
    number: Mapped[int]
    manual: Mapped[bool] = mapped_column(default=False, server_default=false())
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
