"""A decision the client gave by phone, in a meeting or by email, recorded by staff on their
behalf: who recorded it, how and when it was given, why, and optional evidence."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Choice, UTCDateTime, choice_column, utcnow
from portal.models.people import User
from portal.models.review import Decision


class OnBehalfChannel(Choice):
    """How the contact gave the decision that staff recorded."""

    PHONE = "phone"
    MEETING = "meeting"
    EMAIL = "email"
    OTHER = "other"


class DecisionOnBehalf(db.Model):
    """The on-behalf facts of one decision (at most one row per decision)."""

    __tablename__ = "decisions_on_behalf"

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), unique=True)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    channel: Mapped[OnBehalfChannel] = mapped_column(
        choice_column(OnBehalfChannel, "on_behalf_channel"))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the contact said it
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text)
    # Evidence (an email, a scan), content-addressed in the file store; all None without.
    evidence_key: Mapped[str | None] = mapped_column(String(64))
    evidence_name: Mapped[str | None] = mapped_column(String(255))
    evidence_type: Mapped[str | None] = mapped_column(String(100))
    evidence_size: Mapped[int | None] = mapped_column(Integer)

    # Loaded with its decision (one LEFT JOIN): every page that shows a decision says so.
    decision: Mapped[Decision] = relationship(
        backref=backref("on_behalf", uselist=False, lazy="joined"))
    recorded_by: Mapped[User] = relationship(lazy="joined")

    @property
    def facts(self) -> dict[str, object]:
        """What the audit trail and webhooks say about it (no file bytes, no storage path)."""
        return {
            "recorded_by": {"id": self.recorded_by.id, "name": self.recorded_by.name,
                            "email": self.recorded_by.email},
            "channel": self.channel.value, "given_at": self.given_at.isoformat(),
            "note": self.note,
            "evidence": {"name": self.evidence_name, "type": self.evidence_type,
                         "size": self.evidence_size, "sha256": self.evidence_key}
            if self.evidence_key else None,
        }
