"""Staff's page images: anyone signed in, as for the version's file itself."""
from __future__ import annotations

from flask.wrappers import Response
from flask_login import login_required

from portal.views.render_files import page_image
from portal.views.staff import bp


@bp.get("/versions/<int:version_id>/pages/<int:number>.<ext>")
@login_required
def render_page(version_id: int, number: int, ext: str) -> Response:
    return page_image(version_id, number, ext, thumb=False)


@bp.get("/versions/<int:version_id>/thumbs/<int:number>.<ext>")
@login_required
def render_thumb(version_id: int, number: int, ext: str) -> Response:
    return page_image(version_id, number, ext, thumb=True)
