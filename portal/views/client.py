"""The client's side: a magic link opens one approver's view of one request, no account."""
from __future__ import annotations

from datetime import UTC, datetime
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
    send_file,
    session,
    url_for,
)
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import links, outbox
from portal.errors import DomainError, InvalidInput
from portal.extensions import db, limiter
from portal.htmx import is_htmx, render
from portal.links import LinkState
from portal.models import (
    Approver,
    Comment,
    Outcome,
    RejectionScope,
    ReviewRequest,
    Version,
)
from portal.storage import file_store
from portal.views.finance import certificate_response
from portal.workflow import record_decision
from portal.workflow.access import record_view, send_fresh_link
from portal.workflow.comments import post_comment
from portal.workflow.turns import request_status_for

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
    session[ACCESS_KEY] = {"a": check.approver.public_id, "g": check.approver.link_generation,
                           "s": int(check.signed_at.timestamp())}
    return redirect(url_for("client.review"), code=303)


def _gone(approver: Approver | None = None):
    session.pop(ACCESS_KEY, None)
    client = approver.contact.client if approver else None
    return _no_store(make_response(render_template("client/gone.html", client=client), 410))


def _no_store(response: Any) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return response


def _access() -> tuple[Approver, LinkState]:
    data = session.get(ACCESS_KEY)
    if not isinstance(data, dict):
        abort(404)
    approver = db.session.scalar(
        select(Approver).where(Approver.public_id == data.get("a")).options(
            selectinload(Approver.request).selectinload(ReviewRequest.approvers)
            .selectinload(Approver.contact),
            selectinload(Approver.request).selectinload(ReviewRequest.approvers)
            .selectinload(Approver.decision),
            selectinload(Approver.contact),
        )
    )
    if approver is None:
        abort(404)
    signed_at = datetime.fromtimestamp(int(data.get("s", 0)), UTC)
    return approver, links.classify(approver, data.get("g"), signed_at)


def _valid_access() -> Approver:
    approver, state = _access()
    if state != LinkState.VALID:
        abort(403, "This link has expired or been replaced. Open the latest link from your "
                   "email, or ask for a new one.")
    return approver


def _page_context(approver: Approver, **extra: Any) -> dict[str, Any]:
    review_request = approver.request
    version = db.session.scalar(
        select(Version).where(Version.id == review_request.version_id).options(
            selectinload(Version.deliverable),
        )
    )
    deliverable = version.deliverable
    history = db.session.scalars(
        select(Version).where(Version.deliverable_id == deliverable.id,
                              Version.number < version.number, Version.requests.any())
        .order_by(Version.number.desc())
        .options(selectinload(Version.requests).selectinload(ReviewRequest.approvers)
                 .selectinload(Approver.decision),
                 selectinload(Version.requests).selectinload(ReviewRequest.approvers)
                 .selectinload(Approver.contact))
    ).all()
    comments = db.session.scalars(
        select(Comment).where(Comment.request_id == review_request.id, Comment.internal.is_(False))
        .order_by(Comment.id)
        .options(selectinload(Comment.author_user), selectinload(Comment.author_contact))
    ).all()
    return {
        "approver": approver, "review_request": review_request, "version": version,
        "deliverable": deliverable, "project": deliverable.project,
        "client": deliverable.project.client, "history": history, "comments": comments,
        "status_line": request_status_for(approver), "inline_types": INLINE_TYPES,
        "choice": None, "decision_error": None, "comment_error": None, "form": {}, **extra,
    }


def _comments_context(approver: Approver, **extra: Any) -> dict[str, Any]:
    """Just what the thread block shows: htmx posts need no history or preview."""
    comments = db.session.scalars(
        select(Comment).where(Comment.request_id == approver.request_id,
                              Comment.internal.is_(False))
        .order_by(Comment.id)
        .options(selectinload(Comment.author_user), selectinload(Comment.author_contact))
    ).all()
    return {"review_request": approver.request, "comments": comments, "comment_error": None,
            "form": {}, **extra}


@bp.get("/review")
def review():
    approver, state = _access()
    if state == LinkState.REVOKED:
        return _gone(approver)
    if state == LinkState.EXPIRED:
        return _no_store(make_response(
            render_template("client/expired.html", approver=approver,
                            client=approver.contact.client,
                            deliverable=approver.request.version.deliverable), 410))
    choice = request.args.get("choice")
    context = _page_context(approver, choice=choice if choice in CHOICES else None)
    block = "decision_panel" if "choice" in request.args else None
    return _no_store(render("client/review.html", block=block, **context))


@bp.post("/review/renew")
@limiter.limit(lambda: current_app.config["RENEW_RATE_LIMIT"])
def renew():
    approver, state = _access()
    if state == LinkState.REVOKED:
        return _gone(approver)
    try:
        send_fresh_link(approver)
        outbox.commit()
    except DomainError as exc:
        db.session.rollback()
        return _no_store(make_response(render_template(
            "client/expired.html", approver=approver, error=exc, client=approver.contact.client,
            deliverable=approver.request.version.deliverable), exc.status))
    session.pop(ACCESS_KEY, None)
    return _no_store(make_response(render_template("client/renewed.html")))


@bp.post("/review/viewed")
@limiter.limit(_link_limit)
def viewed():
    approver = _valid_access()
    record_view(approver, ip=request.remote_addr or "",
                user_agent=request.headers.get("User-Agent", ""))
    outbox.commit()
    return "", 204


@bp.get("/review/files/<int:version_id>")
def file(version_id: int):
    approver = _valid_access()
    version = db.session.get(Version, version_id)
    deliverable_id = approver.request.version.deliverable_id
    shared = version is not None and version.deliverable_id == deliverable_id and (
        version.id == approver.request.version_id or bool(version.requests))
    if not shared:
        abort(404)
    inline = request.args.get("inline") == "1" and version.media_type in INLINE_TYPES
    response = send_file(file_store().path_for(version.storage_key), mimetype=version.media_type,
                         as_attachment=not inline, download_name=version.file_name, max_age=0)
    # Only our own review page may frame it; an SVG opened directly runs no script.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'self'" + ("; sandbox" if version.media_type != "application/pdf" else "")
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return _no_store(response)


@bp.get("/review/certificate")
def certificate():
    """The client's own approval certificate, and no one else's."""
    approver = _valid_access()
    issued = approver.request.certificate
    if issued is None:
        abort(404)
    return _no_store(certificate_response(issued.public_id))


@bp.post("/review/comments")
@limiter.limit(_link_limit)
def comment():
    approver = _valid_access()
    try:
        post_comment(approver.contact, approver.request, request.form.get("body", ""))
        outbox.commit()
    except DomainError as exc:
        db.session.rollback()
        approver = _valid_access()
        context = (_comments_context if is_htmx() else _page_context)(
            approver, comment_error=exc, form=request.form)
        return _no_store(render("client/review.html", block="comments", status=exc.status,
                                **context))
    if is_htmx():
        return _no_store(render("client/review.html", block="comments",
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
        outbox.commit()
    except DomainError as exc:
        db.session.rollback()
        context = _page_context(_valid_access(), choice=choice if choice in CHOICES else None,
                                decision_error=exc, form=request.form)
        return _no_store(render("client/review.html", block="decision_panel",
                                status=exc.status, **context))
    if is_htmx():  # the thread closes with the request, so it is refreshed too
        return _no_store(render("client/review.html", block="decision_panel",
                                oob_blocks=("comments",), **_page_context(_valid_access())))
    flash("Your decision is recorded.")
    return redirect(url_for("client.review"), code=303)
