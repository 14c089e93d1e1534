"""What the viewer shows of a version: its pages as images, made by a job after the upload.

Derived data: the images live in the content-addressed store under their own SHA-256, and
a render can be thrown away and made again from the version's file at any time
(`flask files render --missing`).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Choice, UTCDateTime, choice_column, utcnow


class RenderStatus(Choice):
    PENDING = "pending"  # asked for; the job has not finished
    READY = "ready"
    FAILED = "failed"  # a file we could not (or would not) preview: it keeps its download
    NO_PREVIEW = "no_preview"  # a type we do not preview (video, Office files, archives)


PENDING_ONLY = text("status = 'pending'")


class VersionRender(db.Model):
    """The state of one version's render, one row per version."""

    __tablename__ = "version_renders"
    # The sweep's question: which renders are still waiting (their job may be lost)?
    __table_args__ = (Index("ix_version_renders_pending", "requested_at",
                            postgresql_where=PENDING_ONLY, sqlite_where=PENDING_ONLY),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), unique=True)
    status: Mapped[RenderStatus] = mapped_column(
        choice_column(RenderStatus, "render_status"), default=RenderStatus.PENDING
    )
    # Why it cannot be previewed, in words for the people looking at the page.
    error: Mapped[str] = mapped_column(Text, default="")
    page_count: Mapped[int] = mapped_column(default=0)
    # Attempts started: a file that kills its renderer every time stops being retried.
    attempts: Mapped[int] = mapped_column(default=0)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rendered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    pages: Mapped[list[PageRender]] = relationship(
        primaryjoin="VersionRender.version_id == foreign(PageRender.version_id)",
        order_by="PageRender.number", viewonly=True,
    )


class PageRender(db.Model):
    """One page (an image is one page): its display image and thumbnail, and its text."""

    __tablename__ = "page_renders"
    __table_args__ = (UniqueConstraint("version_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"))
    number: Mapped[int]  # from 1
    # Pixel sizes of the two images; the display size gives the page's aspect ratio.
    width: Mapped[int]
    height: Mapped[int]
    thumb_width: Mapped[int]
    thumb_height: Mapped[int]
    # Storage keys (SHA-256 of the image). An SVG's page is the version's own file.
    display_key: Mapped[str] = mapped_column(String(64))
    thumb_key: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text, default="")  # for the compare view
