"""What changed between two page images: the compare view's overlay, computed once.

Derived data, keyed by the two images' storage keys (not by versions), so a pair of pages
is compared once however many version pairs show it, and a re-made render is compared
afresh. A row may be deleted at any time: the compare view asks for it again.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow


class PageDiff(db.Model):
    """The pixel difference of page image A (`a_key`) and page image B (`b_key`)."""

    __tablename__ = "page_diffs"
    __table_args__ = (UniqueConstraint("a_key", "b_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    a_key: Mapped[str] = mapped_column(String(64))
    b_key: Mapped[str] = mapped_column(String(64))
    # The size compared at: B's display image (A is resized to it when they differ).
    width: Mapped[int] = mapped_column(default=0)
    height: Mapped[int] = mapped_column(default=0)
    changed_pixels: Mapped[int] = mapped_column(default=0)
    # The changed regions' boxes as fractions of the page: JSON [[x, y, w, h], …].
    regions: Mapped[str] = mapped_column(Text, default="[]")
    # A transparent PNG the size of the page, the changed pixels tinted (storage key);
    # "" when nothing changed or the difference could not be made.
    overlay_key: Mapped[str] = mapped_column(String(64), default="")
    error: Mapped[str] = mapped_column(Text, default="")  # in words for people
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
