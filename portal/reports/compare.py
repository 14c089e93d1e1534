"""Compare two versions of one deliverable: which versions may be compared, the pair shown
by default, and each page number's two pages side by side with what changed (the boxes
and overlay of the stored pixel difference, and the words of the extracted text).

A fixed number of queries whatever the number of pages: the versions, the two viewers,
the pages' keys (and text), and the stored differences.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.files.compare import PageKey, comparable, page_keys, stored
from portal.models import Approver, PageDiff, Version
from portal.reports.renders import PageView, Viewer, viewers
from portal.reports.word_diff import Piece, word_diff

MODES = ("side", "overlay", "text")


@dataclass(frozen=True)
class Box:
    """A changed region, as fractions of the page."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Change:
    # "same", "changed", "pending" (not worked out yet), "failed", or "none": nothing to
    # compare (a page on one side only, or a page that is not an image).
    state: str
    boxes: tuple[Box, ...] = ()
    overlay_url: str = ""
    error: str = ""


@dataclass(frozen=True)
class Row:
    number: int
    a: PageView | None
    b: PageView | None
    change: Change
    words: tuple[Piece, ...] = ()  # the text difference; () when the words are the same
    has_text: bool = False


@dataclass(frozen=True)
class Comparison:
    a: Version
    b: Version
    viewer_a: Viewer
    viewer_b: Viewer
    rows: list[Row]

    @property
    def renders_pending(self) -> bool:
        return self.viewer_a.pending or self.viewer_b.pending

    @property
    def diffs_pending(self) -> bool:
        return any(row.change.state == "pending" for row in self.rows)

    @property
    def ready(self) -> bool:
        return self.viewer_a.ready and self.viewer_b.ready

    @property
    def message(self) -> str:
        """Why there are no pages to compare ('' when there are, or they are coming)."""
        if self.ready or self.renders_pending:
            return ""
        return next(_("Version %(number)s: %(message)s", number=v.number,
                      message=viewer.message) for v, viewer in
                    ((self.a, self.viewer_a), (self.b, self.viewer_b)) if not viewer.ready)

    @property
    def changed_pages(self) -> list[int]:
        return [row.number for row in self.rows if row.change.state == "changed"]

    @property
    def text_changed_pages(self) -> list[int]:
        return [row.number for row in self.rows if row.words]


# --- which versions ---------------------------------------------------------------

def client_versions(approver: Approver) -> list[Version]:
    """The versions this approver may compare: those review_page.shared_version lets them
    see (the one under review, and any other sent to the client), oldest first."""
    request = approver.request
    return list(db.session.scalars(
        select(Version).where(Version.deliverable_id == request.version.deliverable_id,
                              or_(Version.id == request.version_id, Version.requests.any()))
        .order_by(Version.number).options(selectinload(Version.requests))))


def staff_versions(deliverable_id: int) -> list[Version]:
    return list(db.session.scalars(
        select(Version).where(Version.deliverable_id == deliverable_id)
        .order_by(Version.number).options(selectinload(Version.requests))))


def default_pair(versions: Sequence[Version], under_review: Version
                 ) -> tuple[Version, Version] | None:
    """The version under review and the one before it that was sent to the client (for
    staff, failing that, the one just before it); None for a first version."""
    earlier = [v for v in versions if v.number < under_review.number]
    sent = [v for v in earlier if v.requests]
    before = sent or earlier
    return (before[-1], under_review) if before else None


def pick(versions: Sequence[Version], under_review: Version, a_id: int | None,
         b_id: int | None) -> tuple[Version, Version] | None:
    """The pair the address asks for (either may be left out for its default); None when
    there is nothing to compare with. LookupError for a version not among `versions`."""
    default = default_pair(versions, under_review)
    if a_id is None and b_id is None:
        return default
    by_id = {v.id: v for v in versions}
    b = by_id.get(b_id) if b_id is not None else under_review
    a = by_id.get(a_id) if a_id is not None else (default[0] if default else None)
    if b is None or (a is None and a_id is not None):
        raise LookupError("not a version you may compare")
    return (a, b) if a is not None else None


# --- the comparison -----------------------------------------------------------------

def compare(a: Version, b: Version, public_id: str | None = None, *,
            with_text: bool = False) -> Comparison:
    """Page n of A beside page n of B, for staff or for the approver `public_id` names
    (the caller has checked that they may see both versions)."""
    shown = viewers([a.id, b.id], public_id)
    viewer_a, viewer_b = shown[a.id], shown[b.id]
    if not (viewer_a.ready and viewer_b.ready):
        return Comparison(a, b, viewer_a, viewer_b, [])
    keys = page_keys((a.id, b.id), with_text=with_text)
    a_keys, b_keys = keys[a.id], keys[b.id]
    diffs = stored((a_keys[n].display_key, b_keys[n].display_key)
                   for n in a_keys.keys() & b_keys.keys()
                   if comparable(a_keys[n], b_keys[n]))
    a_pages = {p.number: p for p in viewer_a.pages}
    b_pages = {p.number: p for p in viewer_b.pages}
    rows = []
    for number in range(1, max(len(viewer_a.pages), len(viewer_b.pages)) + 1):
        old, new = a_keys.get(number), b_keys.get(number)
        change = _change(old, new, diffs, (a.id, b.id), public_id)
        texts = (old.text if old else "", new.text if new else "")
        rows.append(Row(number, a_pages.get(number), b_pages.get(number), change,
                        tuple(word_diff(*texts)) if with_text else (),
                        any(t.strip() for t in texts)))
    return Comparison(a, b, viewer_a, viewer_b, rows)


def _change(old: PageKey | None, new: PageKey | None, diffs: dict[tuple[str, str], PageDiff],
            pair: tuple[int, int], public_id: str | None) -> Change:
    if old is not None and new is not None and old.display_key == new.display_key:
        return Change("same")
    if not comparable(old, new):
        return Change("none")
    assert old is not None and new is not None
    diff = diffs.get((old.display_key, new.display_key))
    if diff is None:
        return Change("pending")
    if diff.error:
        return Change("failed", error=diff.error)
    boxes = tuple(Box(*box) for box in json.loads(diff.regions))
    if not boxes:
        return Change("same")
    return Change("changed", boxes, overlay_url(*pair, new.number, diff.overlay_key, public_id))


def overlay_url(a_id: int, b_id: int, number: int, key: str, public_id: str | None) -> str:
    if not key:
        return ""
    values = {"a": a_id, "b": b_id, "number": number, "h": key[:16]}
    if public_id is None:
        return url_for("staff.compare_overlay", **values)
    return url_for("client.compare_overlay", public_id=public_id, **values)


def overlay_key(a_id: int, b_id: int, number: int) -> str:
    """The stored overlay of page `number` of A against B ('' when there is none)."""
    keys = page_keys((a_id, b_id), number=number)
    old, new = keys[a_id].get(number), keys[b_id].get(number)
    if not comparable(old, new):
        return ""
    assert old is not None and new is not None
    diff = stored([(old.display_key, new.display_key)]).get((old.display_key, new.display_key))
    return diff.overlay_key if diff is not None else ""
