"""The client's language switch (templates/client/_language_switch.html), on the client
blueprint: a plain form post that keeps the choice for this approver and comes back to the
page, now in that language."""
from __future__ import annotations

from flask import redirect, request, url_for
from flask.wrappers import Response

from portal.errors import DomainError
from portal.extensions import limiter
from portal.views.client import _acting, _link_limit, _page_context, attempt, bp
from portal.views.common import no_store
from portal.views.htmx import render
from portal.workflow.languages import choose_language


@bp.post("/review/<public_id>/language", endpoint="choose_language")
@limiter.limit(_link_limit)
def choose_language_view(public_id: str) -> Response:
    approver = _acting(public_id)

    def refused(exc: DomainError) -> Response:
        # The page as it was, in the language it was in, saying what went wrong.
        return no_store(render("client/review.html", status=exc.status, language_error=exc,
                               **_page_context(_acting(public_id))))
    _chosen, refusal = attempt(lambda: choose_language(approver, request.form.get("language")),
                               refused)
    return refusal or redirect(url_for("client.review", public_id=public_id), code=303)
