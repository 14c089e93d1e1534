"""The client reopens one of their points from an earlier version (the review page's
"Your points from earlier versions"), on the client blueprint."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.wrappers import Response
from flask_babel import gettext as _

from portal.errors import DomainError
from portal.extensions import db, limiter
from portal.models import Comment
from portal.reports import review_page
from portal.views.client import _acting, _link_limit, _page_context, attempt, bp
from portal.views.common import no_store
from portal.views.htmx import is_htmx, render
from portal.workflow.feedback import reopen_point_by_client


@bp.post("/review/<public_id>/points/<int:comment_id>/reopen")
@limiter.limit(_link_limit)
def reopen_point(public_id: str, comment_id: int) -> Response:
    approver = _acting(public_id)
    comment = db.session.get(Comment, comment_id)

    def refused(exc: DomainError) -> Response:
        approver = _acting(public_id)
        if is_htmx():
            html = render_template("client/_earlier_points.html", points_error=exc,
                                   **review_page.page(approver))
            return no_store(Response(html, exc.status))
        return no_store(render("client/review.html", status=exc.status, points_error=exc,
                               **_page_context(approver)))
    _reopened, refusal = attempt(lambda: reopen_point_by_client(
        approver.contact, comment, current_request=approver.request,
        seen_sha256=request.form.get("sha256")), refused)
    if refusal:
        return refusal
    if is_htmx():
        return no_store(Response(render_template("client/_earlier_points.html",
                                                 **review_page.page(approver))))
    flash(_("Your point is open again; the team will see it."))
    return redirect(url_for("client.review", public_id=public_id) + "#earlier-points",
                    code=303)
