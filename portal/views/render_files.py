"""Serving a version's page images, for the staff and client routes that checked access.

Their names are their hashes, so a browser may keep them for a year without asking again
(`immutable`); `private`, since each was served after an access check, so no shared
cache keeps one. The app's no-store rule for signed-in pages leaves these alone.
"""
from __future__ import annotations

from flask import abort
from flask.wrappers import Response
from sqlalchemy import select

from portal.extensions import db
from portal.files.render import EXTENSIONS
from portal.models import PageRender, RenderStatus, VersionRender
from portal.views.common import stream_stored

CACHE_CONTROL = "private, max-age=31536000, immutable"
# An SVG opened on its own runs no script and loads nothing (as on the version's file).
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def page_image(version_id: int, number: int, ext: str, *, thumb: bool) -> Response:
    """The page's display image (or thumbnail) of a ready render; 404 for anything else."""
    page = db.session.scalar(
        select(PageRender).join(VersionRender, VersionRender.version_id == PageRender.version_id)
        .where(PageRender.version_id == version_id, PageRender.number == number,
               VersionRender.status == RenderStatus.READY))
    if page is None or EXTENSIONS.get(page.media_type) != ext:
        abort(404)
    key = page.thumb_key if thumb else page.display_key
    response = stream_stored(key, page.media_type, etag=key, max_age=31536000)
    if response is None:  # derived data gone from the store: `flask files render --missing`
        abort(404)
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["Content-Security-Policy"] = SVG_POLICY if ext == "svg" else (
        "default-src 'none'; sandbox")
    return response
