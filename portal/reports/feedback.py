"""Read models of the client's points across versions: the earlier versions' points on the
client's review page, and every version's points on the staff deliverable page. Each is a
fixed number of queries, however many points and versions there are."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import contains_eager, joinedload

from portal.extensions import db
from portal.models import Comment, Deliverable, PointStatus, Version


def _points_statement(before: bool) -> Any:
    query = (
        select(Comment).join(Version, Comment.version_id == Version.id)
        .where(Version.deliverable_id == bindparam("deliverable_id"),
               Comment.author_contact_id.is_not(None), Comment.internal.is_(False))
        # One statement, whether or not there are points: the rest are joined in.
        .options(contains_eager(Comment.version), joinedload(Comment.author_contact),
                 joinedload(Comment.resolved_in_version), joinedload(Comment.resolved_by))
        .order_by((Comment.resolution_status != PointStatus.OPEN), Version.number.desc(),
                  Comment.id))
    return query.where(Version.number < bindparam("before_number")) if before else query


# Built once, the deliverable (and version number) bound per call: building the joined
# loads cost more Python time than running them (the client's review page reads this).
_POINTS = {True: _points_statement(True), False: _points_statement(False)}


def _client_points(deliverable_id: int, before_number: int | None = None) -> list[Comment]:
    """The client's comments (not staff replies, never internal notes) on this deliverable,
    each with its version, author and resolution loaded (one query): open ones first, then
    the newest version first, in the order they were made."""
    return list(db.session.scalars(_POINTS[before_number is not None], {
        "deliverable_id": deliverable_id, "before_number": before_number}))


def earlier_points(version: Version) -> list[Comment]:
    """The client's points on the versions before this one, and how each stands."""
    return _client_points(version.deliverable_id, version.number)


@dataclass(frozen=True)
class PointItem:
    comment: Comment
    version: Version  # the version it was made on
    later_versions: list[Version]  # where it may be addressed


def staff_points(deliverable: Deliverable) -> list[PointItem]:
    """Every client point on the deliverable with the versions that may address it (from
    the versions the caller loaded)."""
    return [PointItem(c, c.version, [v for v in deliverable.versions
                                     if v.number > c.version.number])
            for c in _client_points(deliverable.id)]
