"""The client's comment beside the document (the review page's thread), on the client
blueprint: a plain form post, or with htmx only what the post adds to the page on screen."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from portal.errors import DomainError
from portal.extensions import db, limiter
from portal.reports import review_page
from portal.views.client import _acting, _link_limit, _page_context, attempt, bp
from portal.views.common import no_store
from portal.views.htmx import is_htmx, render
from portal.workflow.comments import post_comment
from portal.workflow.pins import pin_from_form


@bp.post("/review/<public_id>/comments")
@limiter.limit(_link_limit)
def comment(public_id: str):
    """Without JavaScript: post, then the page again. With htmx: only what the post adds to
    the page on screen (the new comment, the count, its pin), read before the commit so the
    answer asks the database nothing more (on SQLite a POST's next transaction would take
    the write lock again)."""
    approver = _acting(public_id, whole_page=False)
    htmx = is_htmx()

    def refused(exc: DomainError) -> Response:
        if htmx:  # the message beside the form, which keeps what was typed
            response = render("client/review.html", block="comment_error", status=exc.status,
                              comment_error=exc)
            response.headers.update({"HX-Retarget": "#comment-error", "HX-Reswap": "outerHTML"})
            return no_store(response)
        return no_store(render("client/review.html", status=exc.status, **_page_context(
            _acting(public_id), comment_error=exc, form=request.form)))

    def post() -> review_page.Posted | None:
        made = post_comment(approver.contact, approver.request, request.form.get("body", ""),
                            seen_sha256=request.form.get("sha256"),
                            pin=pin_from_form(request.form))
        if not htmx:
            return None
        db.session.flush()
        return review_page.posted(approver, made, _after(request.form.get("after")))
    posted, refusal = attempt(post, refused)
    if refusal:
        return refusal
    if posted is not None:
        return no_store(render("client/review.html", block="posted", posted=posted,
                               zone=posted.zone))
    flash(_("Your comment is posted."))
    return redirect(url_for("client.review", public_id=public_id) + "#comments", code=303)


def _after(raw: str | None) -> int | None:
    """The newest comment the page showed (the form's `after`); None when it names none."""
    return int(raw) if raw and raw.isascii() and raw.isdigit() and len(raw) < 12 else None
