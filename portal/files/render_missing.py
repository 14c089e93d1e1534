"""Renders that should be made (again): `flask files render --missing` and friends.

Renders are derived data, so any of them can be thrown away and made again from the
version's file: after a store was restored without its renders, for versions uploaded
before renders existed, or after the limits were raised for files that failed.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from portal.extensions import db
from portal.files.storage import file_store
from portal.models import PageRender, RenderStatus, Version, VersionRender, utcnow


def _reset(record: VersionRender) -> None:
    record.status, record.error, record.attempts = RenderStatus.PENDING, "", 0
    record.requested_at, record.started_at, record.rendered_at = utcnow(), None, None


def _images_gone(version_ids: list[int]) -> set[int]:
    """Of these ready renders, those with an image no longer in the store."""
    store, gone = file_store(), set()
    pages = db.session.execute(
        select(PageRender.version_id, PageRender.display_key, PageRender.thumb_key)
        .where(PageRender.version_id.in_(version_ids)))
    for version_id, display, thumb in pages:
        if version_id not in gone and not (store.exists(display) and store.exists(thumb)):
            gone.add(version_id)
    return gone


def mark_for_rendering(*, missing: bool = False, failed: bool = False,
                       version_ids: Iterable[int] = ()) -> list[int]:
    """Set these renders back to pending (creating the rows versions lack) in the caller's
    transaction; the version ids, oldest first.

    `missing`: versions without a render, renders still pending (their job was lost) and
    ready ones whose images are gone from the store. `failed`: those that failed (after
    the limits were raised, say). `version_ids`: these, whatever their state.
    """
    chosen = set(version_ids)
    if missing:
        chosen |= set(db.session.scalars(
            select(Version.id).where(~select(VersionRender.id)
                                     .where(VersionRender.version_id == Version.id).exists())))
        chosen |= set(db.session.scalars(select(VersionRender.version_id)
                                         .where(VersionRender.status == RenderStatus.PENDING)))
        ready = list(db.session.scalars(select(VersionRender.version_id)
                                        .where(VersionRender.status == RenderStatus.READY)))
        for start in range(0, len(ready), 500):
            chosen |= _images_gone(ready[start:start + 500])
    if failed:
        chosen |= set(db.session.scalars(select(VersionRender.version_id)
                                         .where(VersionRender.status == RenderStatus.FAILED)))
    existing = set(db.session.scalars(select(Version.id).where(Version.id.in_(chosen))))
    records = {r.version_id: r for r in db.session.scalars(
        select(VersionRender).where(VersionRender.version_id.in_(existing)))}
    for version_id in sorted(existing):
        record = records.get(version_id)
        if record is None:
            db.session.add(VersionRender(version_id=version_id, status=RenderStatus.PENDING))
        elif record.status != RenderStatus.PENDING:  # a pending one may be under way
            _reset(record)
    return sorted(existing)
