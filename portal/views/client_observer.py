"""An observer's side, on the client blueprint (so its errors are client pages): their
emailed link (`/r/o/<token>`, redacted from logs like every `/r/` link) adds a grant for
that observer to the session and leads to `/observe/<public_id>`, the review page with no
way to decide. Observer grants are kept apart from approvers': a grant for one never opens
the other's URLs.
"""
from __future__ import annotations

from typing import Any

from flask import abort, flash, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from portal.errors import DomainError
from portal.extensions import limiter
from portal.i18n import contact_language, use_language
from portal.models import Observer, utcnow
from portal.reports import observer_page
from portal.views.client import INLINE_TYPES, _link_limit, attempt, bp, shared_file
from portal.views.common import no_store
from portal.views.htmx import is_htmx, render
from portal.views.render_files import page_image
from portal.workflow import observers
from portal.workflow.links import LinkState
from portal.workflow.pins import pin_from_form

GRANTS_KEY = "observer_grants"
MAX_GRANTS = 12


def _grants() -> dict[str, Any]:
    grants = session.get(GRANTS_KEY)
    return grants if isinstance(grants, dict) else {}


def _add_grant(check: observers.ObserverCheck) -> None:
    grants = dict(_grants())
    grants[check.observer.public_id] = [check.generation, int(check.signed_at.timestamp())]
    if len(grants) > MAX_GRANTS:
        grants = dict(sorted(grants.items(), key=lambda item: item[1][1],
                             reverse=True)[:MAX_GRANTS])
    session[GRANTS_KEY] = grants


def _dead_page(observer: Observer | None, kind: str, status: int) -> Response:
    """No link opened here (`none`), a revoked or replaced one (`gone`), a run-out one
    (`expired`): a way on in plain words, naming nothing without a live grant."""
    if observer is not None:
        use_language(contact_language(observer.contact))
    html = render_template("client/observer_dead.html", kind=kind,
                           client=observer.contact.client if observer and kind != "none"
                           else None)
    return no_store(make_response(html, status))


@bp.route("/r/o/<token>", methods=["GET", "HEAD"])
@limiter.limit(_link_limit)
def observer_link(token: str):
    """Writes nothing (scanners open links too): the grant, then a URL without the token."""
    check = observers.check_token(token, utcnow())
    if check is None:
        return _dead_page(None, "none", 404)
    if check.state == LinkState.REVOKED:
        return _dead_page(check.observer, "gone", 410)
    _add_grant(check)
    return redirect(url_for("client.observe", public_id=check.observer.public_id), code=303)


def _access(public_id: str) -> tuple[Observer, LinkState]:
    observer = observer_page.observer_by_public_id(public_id)
    grant = _grants().get(public_id)
    if observer is None or not isinstance(grant, list) or not grant:
        abort(_dead_page(None, "none", 403 if observer else 404))
    use_language(contact_language(observer.contact))
    return observer, observers.link_state(observer, grant[0], utcnow())


def _viewing(public_id: str) -> Observer:
    """The observer this URL names, with a live link opened in this browser; else the
    request ends with the page that says what to do."""
    observer, state = _access(public_id)
    if state == LinkState.REVOKED:
        abort(_dead_page(observer, "gone", 410))
    if state == LinkState.EXPIRED:
        abort(_dead_page(observer, "expired", 410))
    return observer


def _page(observer: Observer, status: int = 200, **extra: Any) -> Response:
    context = {**observer_page.page(observer), "inline_types": INLINE_TYPES,
               "comment_error": None, "form": {}, **extra}
    return no_store(render("client/observe.html", status=status, **context))


@bp.get("/observe/<public_id>")
def observe(public_id: str):
    observer = _viewing(public_id)
    if request.args.get("part") == "viewer":  # the placeholder asking for the pages
        context = observer_page.thread(observer)
        return no_store(render("client/observe.html", block="viewer",
                               status=200 if context["viewer"].pending else 286, **context))
    return _page(observer)


@bp.post("/observe/<public_id>/viewed")
@limiter.limit(_link_limit)
def observer_viewed(public_id: str):
    observer = _viewing(public_id)

    def refused(exc: DomainError) -> Response:
        return make_response(exc.message, exc.status)
    _result, refusal = attempt(lambda: observers.record_observer_view(
        observer, seen_sha256=request.form.get("sha256"), at=utcnow()), refused)
    return refusal or ("", 204)


@bp.post("/observe/<public_id>/comments")
@limiter.limit(_link_limit)
def observer_comment(public_id: str):
    """Only for an observer staff allowed to comment; a plain form post (htmx too)."""
    observer = _viewing(public_id)

    def refused(exc: DomainError) -> Response:
        return _page(_viewing(public_id), exc.status, comment_error=exc, form=request.form)
    _result, refusal = attempt(lambda: observers.observer_comment(
        observer, request.form.get("body", ""), seen_sha256=request.form.get("sha256"),
        pin=pin_from_form(request.form), at=utcnow()), refused)
    if refusal:
        return refusal
    if is_htmx():
        return _page(_viewing(public_id))
    flash(_("Your comment is posted."))
    return redirect(url_for("client.observe", public_id=public_id) + "#comments", code=303)


@bp.get("/observe/<public_id>/files/<int:version_id>")
def observer_file(public_id: str, version_id: int):
    return shared_file(observer_page.shared_version(_viewing(public_id), version_id),
                       inline=request.args.get("inline") == "1")


def _shared(public_id: str, version_id: int) -> None:
    if observer_page.shared_version(_viewing(public_id), version_id) is None:
        abort(404)


@bp.get("/observe/<public_id>/versions/<int:version_id>/pages/<int:number>.<ext>")
def observer_page_image(public_id: str, version_id: int, number: int, ext: str) -> Response:
    _shared(public_id, version_id)
    return page_image(version_id, number, ext, thumb=False)


@bp.get("/observe/<public_id>/versions/<int:version_id>/thumbs/<int:number>.<ext>")
def observer_thumb(public_id: str, version_id: int, number: int, ext: str) -> Response:
    _shared(public_id, version_id)
    return page_image(version_id, number, ext, thumb=True)

