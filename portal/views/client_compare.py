"""The client's compare page: the same access as their page images (a link for this
approver opened in this browser, still good, and versions that were sent to them)."""
from __future__ import annotations

from flask import abort, url_for
from flask.wrappers import Response

from portal.reports import compare as compare_report
from portal.reports import review_page
from portal.views.client import _viewing, bp
from portal.views.common import no_store
from portal.views.compare_page import compare_page, overlay_image


@bp.get("/review/<public_id>/compare")
def compare(public_id: str) -> Response:
    approver = _viewing(public_id)
    under_review = approver.request.version
    deliverable = under_review.deliverable
    return no_store(compare_page(
        versions=compare_report.client_versions(approver), under_review=under_review,
        public_id=public_id, endpoint="client.compare", scope={"public_id": public_id},
        layout="client/_layout.html", deliverable=deliverable,
        client=deliverable.project.client,
        back_url=url_for("client.review", public_id=public_id)))


@bp.get("/review/<public_id>/compare/<int:a>/<int:b>/pages/<int:number>.png")
def compare_overlay(public_id: str, a: int, b: int, number: int) -> Response:
    approver = _viewing(public_id)
    if any(review_page.shared_version(approver, v) is None for v in (a, b)):
        abort(404)
    return overlay_image(a, b, number)
