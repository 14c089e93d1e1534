""""I'm not the right person": the approver names a colleague to decide instead (on the
client blueprint). A GET shows the form and a POST asks, so it works without JavaScript."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.wrappers import Response
from flask_babel import gettext as _

from portal.errors import DomainError
from portal.extensions import limiter
from portal.i18n import approver_language, use_language
from portal.models import Approver, Delegation, utcnow
from portal.views.client import _acting, _link_limit, _viewing, attempt, bp
from portal.views.common import no_store
from portal.workflow import delegation as handover


def _form_page(approver: Approver, *, error: DomainError | None = None,
               form: Any = None, status: int = 200) -> Response:
    deliverable = approver.request.version.deliverable
    html = render_template("client/handover.html", approver=approver, error=error,
                           form=form or {}, deliverable=deliverable,
                           version=approver.request.version,
                           client=deliverable.project.client,
                           pending=handover.pending_for(approver),
                           direct=handover.goes_through_directly(approver),
                           zone=deliverable.project.client.zone)
    return no_store(Response(html, status))


@bp.get("/review/<public_id>/handover")
def handover_form(public_id: str) -> Response:
    approver = _viewing(public_id)
    use_language(approver_language(approver))
    return _form_page(approver)


@bp.post("/review/<public_id>/handover")
@limiter.limit(_link_limit)
def ask_handover(public_id: str) -> Response:
    approver = _acting(public_id)
    use_language(approver_language(approver))
    form = request.form

    def refused(exc: DomainError) -> Response:
        return _form_page(_acting(public_id), error=exc, form=form, status=exc.status)
    asked, refusal = attempt(lambda: handover.ask_to_delegate(
        approver, form.get("name", ""), form.get("email", ""), form.get("note", ""),
        utcnow()), refused)
    if refusal:
        return refusal
    if asked.to_approver_id is not None:  # the client allows it: the colleague decides now
        flash(_("%(name)s now decides in your place and has the link by email.",
                name=asked.name))
    else:
        flash(_("Thank you. The team will confirm the hand-over to %(name)s; until then you "
                "can still decide yourself.", name=asked.name))
    return redirect(url_for("client.review", public_id=public_id), code=303)


@bp.app_template_global()
def handover_pending(approver: Approver) -> Delegation | None:
    """The hand-over this approver asked for and the team has yet to confirm (the review
    page says so instead of offering another); asked only while they could still decide."""
    return handover.pending_for(approver) if approver.awaiting_decision else None


@bp.app_template_global()
def handed_over_to(approver: Approver) -> Delegation | None:
    """For a handed-over approver's dead link: to whom they handed it over."""
    return handover.handed_over_by(approver)
