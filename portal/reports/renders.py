"""What the viewer shows of versions: each one's render state and its pages (image URLs,
sizes for the aspect ratio), for staff or for one approver, in one query however many
versions and pages."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import bindparam, select
from sqlalchemy.orm import defer, joinedload

from portal.extensions import db
from portal.files.render import EXTENSIONS
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
            # The stored detail is the renderer's own (technical) words.
            cannot = _("This file cannot be previewed; download it.")
            return f"{cannot} {self.error}".strip()
        if self.ready or self.pending:
            return ""
        return _("There is no preview of this type of file; download it.")


_NUMBER = 918273645  # a page number no document has: where the real one goes


def _url_builders(version_id: int, public_id: str | None, observer: bool = False
                  ) -> tuple[Callable[[PageRender], str], Callable[[PageRender], str]]:
    """The page and thumbnail URLs of one version's pages: url_for once per version, not
    twice per page, the page's number, extension and image hash formatted into the route
    it built."""
    if public_id is None:
        endpoints, scope = ("staff.render_page", "staff.render_thumb"), {}
    elif observer:  # an observer's page (views/client_observer.py)
        endpoints = ("client.observer_page_image", "client.observer_thumb")
        scope = {"public_id": public_id}
    else:
        endpoints, scope = ("client.render_page", "client.render_thumb"), {"public_id": public_id}
    # The hash in the query: a re-made image gets a new URL, so a year's cache is safe.
    builders = []
    for endpoint, key in zip(endpoints, ("display_key", "thumb_key"), strict=True):
        built = url_for(endpoint, **scope, version_id=version_id, number=_NUMBER, ext="e", h="h")
        tail = f"/{_NUMBER}.e?h=h"
        if not built.endswith(tail):  # never expected; url_for per page then
            builders.append(lambda page, endpoint=endpoint, key=key: url_for(
                endpoint, **scope, version_id=page.version_id, number=page.number,
                ext=_ext(page), h=getattr(page, key)[:16]))
            continue
        head = built[:-len(tail)]
        builders.append(lambda page, head=head, key=key:
                        f"{head}/{page.number}.{_ext(page)}?h={getattr(page, key)[:16]}")
    return builders[0], builders[1]


def _ext(page: PageRender) -> str:
    return EXTENSIONS.get(page.media_type, "bin")


# Built once (the version ids bound per call): building the joined load cost more than
# running it.
_RENDERS = (select(VersionRender)
            .where(VersionRender.version_id.in_(bindparam("version_ids", expanding=True)))
            .options(joinedload(VersionRender.pages).options(defer(PageRender.text))))


def viewers(version_ids: Iterable[int], public_id: str | None = None, *,
            observer: bool = False) -> dict[int, Viewer]:
    """Each version's viewer; URLs for staff, or for the approver `public_id` names (the
    caller has checked that they may see these versions)."""
    wanted = list(version_ids)
    records = db.session.scalars(_RENDERS, {"version_ids": wanted}).unique().all()
    found: dict[int, Viewer] = {}
    for record in records:
        pages = []
        if record.status == RenderStatus.READY:
            page_url, thumb_url = _url_builders(record.version_id, public_id, observer)
            for page in record.pages:
                pages.append(PageView(page.number, page.width, page.height, page.thumb_width,
                                      page.thumb_height, page_url(page), thumb_url(page),
                                      page.media_type))
        found[record.version_id] = Viewer(record.version_id, record.status, record.error, pages)
    return {v: found.get(v, Viewer(v, None)) for v in wanted}


def viewer(version_id: int, public_id: str | None = None, *, observer: bool = False) -> Viewer:
    """`observer`: `public_id` names an observer, not an approver."""
    return viewers([version_id], public_id, observer=observer)[version_id]


def page_texts(version_id: int) -> dict[int, str]:
    """Each page's extracted text, by page number (for the compare view)."""
    rows = db.session.execute(
        select(PageRender.number, PageRender.text).where(PageRender.version_id == version_id)
        .order_by(PageRender.number)).all()
    return {number: text for number, text in rows}
