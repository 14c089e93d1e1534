"""The emailed-code step-up on the client's review page: ask for a code, type it back
(portal/workflow/step_up.py holds the rules), on the client blueprint."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from portal.extensions import limiter
from portal.views.client import _acting, _link_limit, _panel, attempt, bp
from portal.views.htmx import is_htmx
from portal.workflow import step_up

CODE_ANSWERS = {
    step_up.CodeCheck.WRONG: _l("That code is not right. Check the newest email and try "
                                "again."),
    step_up.CodeCheck.EXPIRED: _l("That code has expired. Ask for a new one."),
    step_up.CodeCheck.NO_TRIES_LEFT: _l("Too many wrong tries for this code. Ask for a new "
                                        "one."),
    step_up.CodeCheck.NONE_SENT: _l("Ask for a code first."),
}


@bp.post("/review/<public_id>/code")
@limiter.limit(_link_limit)
def send_code(public_id: str):
    approver = _acting(public_id)
    _sent, refusal = attempt(lambda: step_up.send_code(approver,
                                                   seen_sha256=request.form.get("sha256")),
                         lambda exc: _panel(public_id, exc.status, code_error=exc.message))
    minutes = int(step_up.CODE_TTL.total_seconds() // 60)
    return refusal or _panel(public_id, code_notice=ngettext(
        "We have emailed you a code. It works for %(num)d minute.",
        "We have emailed you a code. It works for %(num)d minutes.", minutes))


@bp.post("/review/<public_id>/code/confirm")
@limiter.limit(_link_limit)
def confirm_code(public_id: str):
    approver = _acting(public_id)
    answer, refusal = attempt(  # committed whatever the answer: a wrong try counts too
        lambda: step_up.confirm_code(approver, request.form.get("code", ""),
                                     seen_sha256=request.form.get("sha256")),
        lambda exc: _panel(public_id, exc.status, code_error=exc.message))
    if refusal:
        return refusal
    if answer != step_up.CodeCheck.CONFIRMED:
        return _panel(public_id, 422, code_error=str(CODE_ANSWERS[answer]))
    if is_htmx():
        return _panel(public_id)
    flash(_("Code confirmed: you can decide now."))
    return redirect(url_for("client.review", public_id=public_id), code=303)
