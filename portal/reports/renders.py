"""What the viewer shows of versions: each one's render state and its pages (image URLs,
sizes for the aspect ratio), for staff or for one approver, in one query however many
versions and pages."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from flask import url_for
from sqlalchemy import select
from sqlalchemy.orm import defer, joinedload

from portal.extensions import db
from portal.files.render import CANNOT, EXTENSIONS
from portal.models import PageRender, RenderStatus, VersionRender


@dataclass(frozen=True)
class PageView:
    number: int
    width: int  # display image, in pixels; with height, the page's aspect ratio
    height: int
    thumb_width: int
    thumb_height: int
    url: str
    thumb_url: str
    media_type: str


@dataclass(frozen=True)
class Viewer:
    version_id: int
    # None: the version has no render (uploaded before renders existed).
    status: RenderStatus | None
    error: str = ""
    pages: list[PageView] = field(default_factory=list)

    @property
    def pending(self) -> bool:  # the page shows a placeholder that asks again
        return self.status == RenderStatus.PENDING

    @property
    def ready(self) -> bool:
        return self.status == RenderStatus.READY and bool(self.pages)

    @property
    def failed(self) -> bool:
        return self.status == RenderStatus.FAILED

    @property
    def message(self) -> str:
        """What to say instead of pages: '' when there are pages or they are coming."""
        if self.failed:
            return f"{CANNOT} {self.error}".strip()
        if self.ready or self.pending:
            return ""
        return "There is no preview of this type of file; download it."


def _urls(page: PageRender, public_id: str | None) -> tuple[str, str]:
    values = {"version_id": page.version_id, "number": page.number,
              "ext": EXTENSIONS.get(page.media_type, "bin")}
    if public_id is None:
        endpoints, scope = ("staff.render_page", "staff.render_thumb"), {}
    else:
        endpoints, scope = ("client.render_page", "client.render_thumb"), {"public_id": public_id}
    # The hash in the query: a re-made image gets a new URL, so a year's cache is safe.
    return (url_for(endpoints[0], **scope, **values, h=page.display_key[:16]),
            url_for(endpoints[1], **scope, **values, h=page.thumb_key[:16]))


def viewers(version_ids: Iterable[int], public_id: str | None = None) -> dict[int, Viewer]:
    """Each version's viewer; URLs for staff, or for the approver `public_id` names (the
    caller has checked that they may see these versions)."""
    wanted = list(version_ids)
    records = db.session.scalars(
        select(VersionRender).where(VersionRender.version_id.in_(wanted))
        .options(joinedload(VersionRender.pages).options(defer(PageRender.text)))
    ).unique().all()
    found: dict[int, Viewer] = {}
    for record in records:
        pages = []
        if record.status == RenderStatus.READY:
            for page in record.pages:
                url, thumb_url = _urls(page, public_id)
                pages.append(PageView(page.number, page.width, page.height, page.thumb_width,
                                      page.thumb_height, url, thumb_url, page.media_type))
        found[record.version_id] = Viewer(record.version_id, record.status, record.error, pages)
    return {v: found.get(v, Viewer(v, None)) for v in wanted}


def viewer(version_id: int, public_id: str | None = None) -> Viewer:
    return viewers([version_id], public_id)[version_id]


def page_texts(version_id: int) -> dict[int, str]:
    """Each page's extracted text, by page number (for the compare view)."""
    rows = db.session.execute(
        select(PageRender.number, PageRender.text).where(PageRender.version_id == version_id)
        .order_by(PageRender.number)).all()
    return {number: text for number, text in rows}
