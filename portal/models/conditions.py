"""The conditions of an approval, each a tracked item: open until staff mark it met in a
later version, or won't do with a reason the client sees."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from flask_babel import pgettext
from sqlalchemy import ForeignKey, Index, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Choice, UTCDateTime, choice_column
from portal.models.people import User
from portal.models.work import Version

if TYPE_CHECKING:
    from portal.models.review import Decision


class ConditionStatus(Choice):
    OPEN = "open"
    MET = "met"
    WONT_DO = "wont_do"


CONDITION_OPEN = text("status = 'open'")


class Condition(db.Model):
    """One condition of an approval with conditions, in the order the client typed it."""

    __tablename__ = "conditions"
    __table_args__ = (
        UniqueConstraint("decision_id", "position"),
        # The dashboard's "open conditions": a small partial index.
        Index("ix_conditions_open", "decision_id",
              postgresql_where=CONDITION_OPEN, sqlite_where=CONDITION_OPEN),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"))
    position: Mapped[int]  # 1, 2, … as typed
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[ConditionStatus] = mapped_column(
        choice_column(ConditionStatus, "condition_status"), default=ConditionStatus.OPEN,
        server_default=ConditionStatus.OPEN.value)
    # Met: the later version of the same deliverable that meets it.
    resolved_in_version_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"))
    # Met: an optional note; won't do: the reason, which the client sees.
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    decision: Mapped[Decision] = relationship(back_populates="conditions")
    resolved_in_version: Mapped[Version | None] = relationship()
    resolved_by: Mapped[User | None] = relationship()

    @property
    def is_open(self) -> bool:
        return self.status == ConditionStatus.OPEN

    @property
    def resolution(self) -> str:
        """How it stands, in words a client reads (in the language at hand): open, met in
        version 3: …, won't do: …"""
        note = self.note
        if self.status == ConditionStatus.MET:
            version = self.resolved_in_version
            if version and note:
                return pgettext("condition", "met in version %(n)s: %(note)s",
                                n=version.number, note=note)
            if version:
                return pgettext("condition", "met in version %(n)s", n=version.number)
            return (pgettext("condition", "met: %(note)s", note=note) if note
                    else ConditionStatus.MET.label)
        if self.status == ConditionStatus.WONT_DO:
            return pgettext("condition", "won't do: %(note)s", note=note)
        return ConditionStatus.OPEN.label
