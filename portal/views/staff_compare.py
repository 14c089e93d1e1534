"""Staff's compare page: anyone signed in, as for the versions' files and page images."""
from __future__ import annotations

from flask import abort, url_for
from flask.wrappers import Response
from flask_login import login_required

from portal.models import Deliverable
from portal.reports import compare as compare_report
from portal.views.common import get_or_404
from portal.views.compare_page import compare_page, overlay_image
from portal.views.staff import bp


@bp.get("/deliverables/<int:deliverable_id>/compare")
@login_required
def compare(deliverable_id: int) -> Response:
    deliverable = get_or_404(Deliverable, deliverable_id)
    versions = compare_report.staff_versions(deliverable.id)
    if not versions:
        abort(404)
    return compare_page(
        versions=versions, under_review=versions[-1], public_id=None,
        endpoint="staff.compare", scope={"deliverable_id": deliverable.id},
        layout="base.html", deliverable=deliverable,
        back_url=url_for("staff.deliverable_page", deliverable_id=deliverable.id))


@bp.get("/compare/<int:a>/<int:b>/pages/<int:number>.png")
@login_required
def compare_overlay(a: int, b: int, number: int) -> Response:
    return overlay_image(a, b, number)
