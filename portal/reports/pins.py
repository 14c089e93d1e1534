"""Pinned comments as the viewer draws them: numbered markers per page, in thread order."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from portal.models import Comment

SCALE = 1000  # the marker layer's viewBox width; heights follow each page's aspect


@dataclass(frozen=True)
class Marker:
    comment_id: int
    number: int
    page: int
    x: float | None
    y: float | None
    w: float | None
    h: float | None
    internal: bool

    def box(self, aspect: float) -> tuple[int, int, int, int] | None:
        """x, y, width, height in the page layer's units, for a box pin."""
        if None in (self.x, self.y, self.w, self.h):
            return None
        return (round(self.x * SCALE), round(self.y * SCALE * aspect),  # type: ignore[operator]
                round(self.w * SCALE), round(self.h * SCALE * aspect))  # type: ignore[operator]

    def spot(self, aspect: float) -> tuple[int, int]:
        """Where the numbered marker sits: the spot, a box's corner, or the page's corner
        for a comment pinned to the page as a whole."""
        if self.x is None or self.y is None:
            return 40, 40
        return round(self.x * SCALE), round(self.y * SCALE * aspect)


@dataclass
class Pins:
    by_page: dict[int, list[Marker]] = field(default_factory=dict)
    number_of: dict[int, int] = field(default_factory=dict)  # comment id -> marker number


def pins(comments: Iterable[Comment], version_id: int) -> Pins:
    """The markers of the comments pinned on this version, numbered #1, #2… in order."""
    found = Pins()
    for comment in comments:
        if comment.page is None or comment.version_id != version_id:
            continue
        number = len(found.number_of) + 1
        found.number_of[comment.id] = number
        found.by_page.setdefault(comment.page, []).append(Marker(
            comment.id, number, comment.page, comment.x, comment.y, comment.w, comment.h,
            comment.internal))
    return found
