"""The client's page images: the same access as the client's file route (a link for this
approver opened in this browser, still good, and a version that was sent to them)."""
from __future__ import annotations

from flask import abort
from flask.wrappers import Response

from portal.reports import review_page
from portal.views.client import _viewing, bp
from portal.views.render_files import page_image


def _shared(public_id: str, version_id: int) -> None:
    if review_page.shared_version(_viewing(public_id), version_id) is None:
        abort(404)


@bp.get("/review/<public_id>/versions/<int:version_id>/pages/<int:number>.<ext>")
def render_page(public_id: str, version_id: int, number: int, ext: str) -> Response:
    _shared(public_id, version_id)
    return page_image(version_id, number, ext, thumb=False)


@bp.get("/review/<public_id>/versions/<int:version_id>/thumbs/<int:number>.<ext>")
def render_thumb(public_id: str, version_id: int, number: int, ext: str) -> Response:
    _shared(public_id, version_id)
    return page_image(version_id, number, ext, thumb=True)
