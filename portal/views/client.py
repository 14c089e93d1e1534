"""The client's side: a magic link opens one approver's view of one request, no account."""
from __future__ import annotations

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
    session,
    url_for,
)

from portal.errors import DomainError, InvalidInput
from portal.extensions import db, limiter
from portal.models import (
    Approver,
    Outcome,
    RejectionScope,
)
from portal.reports import review_page
from portal.views.common import certificate_response, no_store, send_stored
from portal.views.htmx import is_htmx, render
from portal.workflow import links, record_decision
from portal.workflow.comments import post_comment
from portal.workflow.invitations import record_view, send_fresh_link
from portal.workflow.links import LinkState

bp = Blueprint("client", __name__)
ACCESS_KEY = "review_access"
INLINE_TYPES = {"application/pdf", "image/png", "image/jpeg", "image/webp", "image/svg+xml"}
CHOICES = {"approve": Outcome.APPROVED, "approve_with_conditions": Outcome.APPROVED_WITH_CONDITIONS,
           "reject": Outcome.REJECTED}


def _link_limit() -> str:
    return current_app.config["CLIENT_RATE_LIMIT"]


@bp.route("/r/<token>", methods=["GET", "HEAD"])
@limiter.limit(_link_limit)
def open_link(token: str):
    """Scanners open links too, so this writes nothing: it only moves the token into the
    session and redirects to a URL without it."""
    check = links.check_token(token)
    if check is None:
        abort(404)
    if check.state == LinkState.REVOKED:
        return _gone(check.approver)
    session[ACCESS_KEY] = {"a": check.approver.public_id, "g": check.generation}
    return redirect(url_for("client.review"), code=303)


def _gone(approver: Approver | None = None):
    session.pop(ACCESS_KEY, None)
    client = approver.contact.client if approver else None
    return no_store(make_response(render_template("client/gone.html", client=client), 410))


def _access() -> tuple[Approver, LinkState]:
    data = session.get(ACCESS_KEY)
    approver = review_page.approver_by_public_id(data.get("a")) \
        if isinstance(data, dict) else None
    if approver is None:
        abort(404)
    return approver, links.link_state(approver, data.get("g"))


def _valid_access() -> Approver:
    approver, state = _access()
    if state != LinkState.VALID:
        abort(403, "This link has expired or been replaced. Open the latest link from your "
                   "email, or ask for a new one.")
    return approver


FORM_DEFAULTS = {"choice": None, "decision_error": None, "comment_error": None, "form": {}}


def _page_context(approver: Approver, **extra: Any) -> dict[str, Any]:
    return {**review_page.page(approver), "inline_types": INLINE_TYPES, **FORM_DEFAULTS,
            **extra}


def _comments_context(approver: Approver, **extra: Any) -> dict[str, Any]:
    return {**review_page.thread(approver), **FORM_DEFAULTS, **extra}


@bp.get("/review")
def review():
    approver, state = _access()
    if state == LinkState.REVOKED:
        return _gone(approver)
    if state == LinkState.EXPIRED:
        return no_store(make_response(
            render_template("client/expired.html", approver=approver,
                            client=approver.contact.client,
                            deliverable=approver.request.version.deliverable), 410))
    choice = request.args.get("choice")
    context = _page_context(approver, choice=choice if choice in CHOICES else None)
    block = "decision_panel" if "choice" in request.args else None
    return no_store(render("client/review.html", block=block, **context))


@bp.post("/review/renew")
@limiter.limit(lambda: current_app.config["RENEW_RATE_LIMIT"])
def renew():
    approver, state = _access()
    if state == LinkState.REVOKED:
        return _gone(approver)
    try:
        send_fresh_link(approver)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return no_store(make_response(render_template(
            "client/expired.html", approver=approver, error=exc, client=approver.contact.client,
            deliverable=approver.request.version.deliverable), exc.status))
    session.pop(ACCESS_KEY, None)
    return no_store(make_response(render_template("client/renewed.html")))


@bp.post("/review/viewed")
@limiter.limit(_link_limit)
def viewed():
    approver = _valid_access()
    record_view(approver, ip=request.remote_addr or "",
                user_agent=request.headers.get("User-Agent", ""))
    db.session.commit()
    return "", 204


@bp.get("/review/files/<int:version_id>")
def file(version_id: int):
    version = review_page.shared_version(_valid_access(), version_id)
    if version is None:
        abort(404)
    inline = request.args.get("inline") == "1" and version.media_type in INLINE_TYPES
    response = send_stored(version.storage_key, version.media_type, version.file_name,
                           inline=inline)
    # Only our own review page may frame it; an SVG opened directly runs no script.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'self'" + ("; sandbox" if version.media_type != "application/pdf" else "")
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return no_store(response)


@bp.get("/review/certificate")
def certificate():
    """The client's own approval certificate, and no one else's."""
    approver = _valid_access()
    issued = approver.request.certificate
    if issued is None:
        abort(404)
    return no_store(certificate_response(issued.public_id))


@bp.post("/review/comments")
@limiter.limit(_link_limit)
def comment():
    approver = _valid_access()
    try:
        post_comment(approver.contact, approver.request, request.form.get("body", ""))
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        approver = _valid_access()
        context = (_comments_context if is_htmx() else _page_context)(
            approver, comment_error=exc, form=request.form)
        return no_store(render("client/review.html", block="comments", status=exc.status,
                                **context))
    if is_htmx():
        return no_store(render("client/review.html", block="comments",
                                **_comments_context(approver)))
    flash("Your comment is posted.")
    return redirect(url_for("client.review") + "#comments", code=303)


@bp.post("/review/decision")
@limiter.limit(_link_limit)
def decide():
    approver = _valid_access()
    choice = request.form.get("choice", "")
    try:
        if choice not in CHOICES:
            raise InvalidInput("Choose approve, approve with conditions, or reject.")
        if not request.form.get("confirm"):
            raise InvalidInput("Tick the box to confirm your decision.")
        scope_raw = request.form.get("scope") or None
        scope = RejectionScope(scope_raw) if scope_raw in {s.value for s in RejectionScope} \
            else None
        record_decision(approver, CHOICES[choice], request.form.get("text", ""), scope,
                        ip=request.remote_addr or "",
                        user_agent=request.headers.get("User-Agent", ""))
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        context = _page_context(_valid_access(), choice=choice if choice in CHOICES else None,
                                decision_error=exc, form=request.form)
        return no_store(render("client/review.html", block="decision_panel",
                                status=exc.status, **context))
    if is_htmx():  # the thread closes with the request, so it is refreshed too
        return no_store(render("client/review.html", block="decision_panel",
                                oob_blocks=("comments",), **_page_context(_valid_access())))
    flash("Your decision is recorded.")
    return redirect(url_for("client.review"), code=303)
