"""The client's side: a magic link opens one approver's view of one request, no account.

Every URL names the approver it acts for (`/review/<public_id>/…`) and every action names
the version on screen, so a tab acts only on what it shows (see client_access.py).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from portal.database import declare_reads_only
from portal.errors import DomainError, InvalidInput
from portal.extensions import db, limiter
from portal.models import Approver, Outcome, Version
from portal.reports import review_page
from portal.views.client_access import (
    access,
    add_grant,
    gone_page,
    holds_valid_grant,
    may_point_on,
    no_access_page,
    speak_to,
    way_on,
)
from portal.views.common import certificate_response, no_store, send_stored
from portal.views.htmx import is_htmx, render
from portal.workflow import links, record_decision
from portal.workflow.conditions import MAX_CONDITION_LEN, MAX_CONDITIONS
from portal.workflow.invitations import record_view, send_fresh_link
from portal.workflow.links import LinkState
from portal.workflow.on_screen import PageOutOfDate, check_current

bp = Blueprint("client", __name__)
INLINE_TYPES = {"application/pdf", "image/png", "image/jpeg", "image/webp", "image/svg+xml"}
CHOICES = {"approve": Outcome.APPROVED, "approve_with_conditions": Outcome.APPROVED_WITH_CONDITIONS,
           "request_changes": Outcome.REJECTED}
CONDITION_ROWS = 3  # boxes the conditions form starts with; "Add another" adds one
LINK_DEAD = _l("This link has expired or been replaced. Open the latest link from your email, "
               "or ask for a new one.")


def _link_limit() -> str:
    return current_app.config["CLIENT_RATE_LIMIT"]


def _per_approver() -> str:
    return "approver:" + str((request.view_args or {}).get("public_id", ""))


@bp.route("/r/<token>", methods=["GET", "HEAD"])
@limiter.limit(_link_limit)
def open_link(token: str):
    """Scanners open links too, so this writes nothing: it only adds the link's grant to
    the session and redirects to a URL without the token."""
    check = links.check_token(token)
    if check is None:
        return no_access_page(None)
    if check.state == LinkState.REVOKED:
        return gone_page(check.approver, check.generation)
    add_grant(check)
    return redirect(url_for("client.review", public_id=check.approver.public_id), code=303)


def _expired_page(approver: Approver, error: DomainError | None = None) -> Response:
    html = render_template("client/expired.html", approver=approver, error=error,
                           client=approver.contact.client,
                           deliverable=approver.request.version.deliverable,
                           **way_on(approver))
    return no_store(make_response(html, error.status if error else 410))


def _out_of_date(exc: PageOutOfDate) -> Response:
    response = render("client/out_of_date.html", block="content", status=exc.status, error=exc,
                      client=exc.deliverable.project.client,
                      granted=exc.current is not None and holds_valid_grant(exc.current))
    if is_htmx():  # whichever piece asked, the whole page is what is out of date
        response.headers.update({"HX-Retarget": "#main", "HX-Reswap": "innerHTML"})
    return no_store(response)


def attempt(action: Callable[[], Any],
            refused: Callable[[DomainError], Response]) -> tuple[Any, Response | None]:
    """Run one client action and commit it. When the domain refuses, nothing is kept and
    the answer is the out-of-date page or `refused`'s. Either way the action's one
    transaction is over: what is drawn next only reads, so on SQLite it begins without the
    write lock (other clients' posts wait on it) and a write there fails at once."""
    try:
        result, error = action(), None
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        result, error = None, exc
    declare_reads_only(True)
    if error is None:
        return result, None
    return None, _out_of_date(error) if isinstance(error, PageOutOfDate) else refused(error)


def _acting(public_id: str, *, whole_page: bool = True) -> Approver:
    """The approver a client action acts for, on the version the form says was on screen.
    Anything else ends the request: out of date (409), or a link no longer good (403)."""
    approver, state = access(public_id, whole_page=whole_page)
    if state != LinkState.VALID:
        try:  # a replaced request says where to go now; a dead link just says so
            if may_point_on(approver):
                check_current(approver.request, approver.contact)
        except PageOutOfDate as exc:
            abort(_out_of_date(exc))
        abort(403, str(LINK_DEAD))
    return approver


def _viewing(public_id: str) -> Approver:
    approver, state = access(public_id)
    if state != LinkState.VALID:
        abort(403, str(LINK_DEAD))
    return approver


FORM_DEFAULTS = {"choice": None, "decision_error": None, "comment_error": None, "form": {},
                 "code_error": None, "code_notice": None, "condition_rows": CONDITION_ROWS,
                 "max_conditions": MAX_CONDITIONS, "condition_len": MAX_CONDITION_LEN}


def shared_file(version: Version | None, *, inline: bool) -> Response:
    """A version's file to someone whose link shares it (an approver, an observer): 404 for
    any other; only our own review page may frame it, and an SVG opened on its own runs no
    script."""
    if version is None:
        abort(404)
    response = send_stored(version.storage_key, version.media_type, version.file_name,
                           inline=inline and version.media_type in INLINE_TYPES)
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'self'" + ("; sandbox" if version.media_type != "application/pdf" else "")
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return no_store(response)


def _page_context(approver: Approver, **extra: Any) -> dict[str, Any]:
    return {**review_page.page(approver), "inline_types": INLINE_TYPES, **FORM_DEFAULTS,
            "language_switch": True, **way_on(approver), **extra}


def _comments_context(approver: Approver, **extra: Any) -> dict[str, Any]:
    return {**review_page.thread(approver), **FORM_DEFAULTS, **extra}


@bp.get("/review/<public_id>")
def review(public_id: str):
    approver, state = access(public_id)
    if state == LinkState.REVOKED:
        return gone_page(approver)
    if state == LinkState.EXPIRED:
        return _expired_page(approver)
    if request.args.get("part") == "viewer":  # the placeholder asking for the pages
        context = _comments_context(approver)
        # 286 stops htmx polling once the pages are there (or never will be).
        return no_store(render("client/review.html", block="viewer",
                               status=200 if context["viewer"].pending else 286, **context))
    choice = request.args.get("choice")
    context = _page_context(approver, choice=choice if choice in CHOICES else None)
    block = "decision_panel" if "choice" in request.args else None
    return no_store(render("client/review.html", block=block, **context))


@bp.post("/review/<public_id>/renew")
@limiter.limit(lambda: current_app.config["RENEW_RATE_LIMIT"])
@limiter.limit(lambda: current_app.config["RENEW_RATE_LIMIT"], key_func=_per_approver)
def renew(public_id: str):
    """A fresh link to the address on file: from the expired page, or from a browser that
    holds no link for this approver (another device, a mail app's own browser)."""
    approver = review_page.approver_by_public_id(public_id)
    if approver is None:
        return no_access_page(None)
    speak_to(approver)
    try:
        send_fresh_link(approver)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return _expired_page(approver, exc)
    return no_store(make_response(render_template("client/renewed.html")))


@bp.post("/review/<public_id>/viewed")
@limiter.limit(_link_limit)
def viewed(public_id: str):
    approver = _acting(public_id)

    def refused(exc: DomainError) -> Response:
        return make_response(exc.message, exc.status)
    _viewed, refusal = attempt(lambda: record_view(
        approver, seen_sha256=request.form.get("sha256"), ip=request.remote_addr or "",
        user_agent=request.headers.get("User-Agent", "")), refused)
    return refusal or ("", 204)


@bp.get("/review/<public_id>/files/<int:version_id>")
def file(public_id: str, version_id: int):
    return shared_file(review_page.shared_version(_viewing(public_id), version_id),
                       inline=request.args.get("inline") == "1")


@bp.get("/review/<public_id>/certificate")
def certificate(public_id: str):
    """The client's own approval certificate, and no one else's."""
    issued = _viewing(public_id).request.certificate
    if issued is None:
        abort(404)
    return no_store(certificate_response(issued.public_id))


def _conditions_form(more: bool = False) -> tuple[list[str] | None, int]:
    """The condition boxes as sent (None from a form without any: its text is the one
    condition), and how many boxes to show again: as many, and one more when asked."""
    typed = request.form.getlist("condition") if "condition" in request.form else None
    return typed, min(max(len(typed or []), CONDITION_ROWS) + more, MAX_CONDITIONS)


@bp.post("/review/<public_id>/decision")
@limiter.limit(_link_limit)
def decide(public_id: str):
    approver = _acting(public_id)
    choice = request.form.get("choice", "")
    if choice == "approve_with_conditions" and request.form.get("add_condition"):
        # "Add another condition" without JavaScript: the same form, one more box.
        return _panel(public_id, choice=choice, form=request.form,
                      condition_rows=_conditions_form(more=True)[1])
    def decide_now() -> None:
        # The button itself says the act ("Approve version 2 of Homepage"): pressing it is
        # the confirmation, so no tick box.
        if choice not in CHOICES:
            raise InvalidInput(_("Choose approve, approve with conditions, or request "
                                     "changes."))
        record_decision(approver, CHOICES[choice], request.form.get("text", ""),
                        seen_sha256=request.form.get("sha256"),
                        conditions=_conditions_form()[0], ip=request.remote_addr or "",
                        user_agent=request.headers.get("User-Agent", ""))

    def refused(exc: DomainError) -> Response:
        context = _page_context(_acting(public_id), choice=choice if choice in CHOICES else None,
                                decision_error=exc, form=request.form,
                                condition_rows=_conditions_form()[1])
        return no_store(render("client/review.html", block="decision_panel",
                               status=exc.status, **context))
    _decided, refusal = attempt(decide_now, refused)
    if refusal:
        return refusal
    if is_htmx():  # the thread closes with the request, so it is refreshed too
        return no_store(render("client/review.html", block="decision_panel",
                                oob_blocks=("comments", "viewer"),
                                **_page_context(_acting(public_id))))
    flash(_("Your decision is recorded."))
    return redirect(url_for("client.review", public_id=public_id), code=303)


def _panel(public_id: str, status: int = 200, **extra: Any) -> Response:
    return no_store(render("client/review.html", block="decision_panel", status=status,
                           **_page_context(_acting(public_id), **extra)))
