"""What every blueprint shares: who may open a page, parsing, files, and the deliverable
page that staff actions answer with. Views import this module, never each other."""
from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Any, TypeVar

from flask import abort, flash, redirect, request, send_file, url_for
from flask.wrappers import Response
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.datastructures import ContentRange, MultiDict
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import is_resource_modified, parse_range_header

from portal.certificates.verify import stored_file_of
from portal.errors import DomainError, InvalidInput
from portal.extensions import db
from portal.files.storage import file_store
from portal.models import Deliverable, User
from portal.permissions import require_admin, require_staff
from portal.reports import board
from portal.views.htmx import is_htmx, render

F = TypeVar("F", bound=Callable[..., Any])


def acting_user() -> User:
    """The signed-in person, as the model domain functions take."""
    return current_user._get_current_object()  # type: ignore[no-any-return]


def _guarded(check: Callable[[User], None]) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            check(acting_user())  # NotAllowed: a 403 page
            return view(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorator


staff_only = _guarded(require_staff)
admin_only = _guarded(lambda user: require_admin(user, "open this page"))


def get_or_404(model: type, ident: Any) -> Any:
    return db.get_or_404(model, ident)


def parse_date(raw: str | None, what: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidInput(_("%(what)s must be a date like 2026-12-31.", what=what)) from exc


def no_store(response: Any) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return response


def stream_stored(storage_key: str, media_type: str, *, name: str | None = None,
                  inline: bool = True, max_age: int = 0,
                  etag: bool | str = True) -> Response | None:
    """A stored file as a response (None when it is not in the store), for a view that has
    checked access. A local store's file goes out as send_file sends a path (Range and
    conditional requests included); from S3 it is streamed through this process with
    the same Range and conditional answers (its key is its ETag), never held whole."""
    store = file_store()
    path = store.local_path(storage_key)
    if path is not None:
        try:  # send_file stats the path itself: no second look first
            return send_file(path, mimetype=media_type, as_attachment=not inline,
                             download_name=name, etag=etag, conditional=True,
                             max_age=max_age)
        except FileNotFoundError:
            return None
    tag = etag if isinstance(etag, str) else storage_key
    byte_range = _range_to_fetch(tag)
    if byte_range is None and not is_resource_modified(request.environ, tag):
        # The key is the content's hash: a client holding it needs nothing from S3.
        response = Response(status=304)
        response.set_etag(tag)
        return response
    try:
        part = store.open_part(storage_key, byte_range)
    except FileNotFoundError:
        return None
    if part is None:  # the range starts past the end: 416 with the real length
        raise RequestedRangeNotSatisfiable(length=store.size(storage_key))
    # Under gunicorn, send_file wraps the reader in a FileWrapper that cannot seek, so
    # the reader holds exactly the bytes to send: one bounded GET for a range.
    response = send_file(part.reader, mimetype=media_type, as_attachment=not inline,
                         download_name=name, etag=False, conditional=False, max_age=max_age)
    response.content_length = part.length
    response.accept_ranges = "bytes"
    response.set_etag(tag)
    if byte_range is not None:
        response.status_code = 206
        response.content_range = ContentRange("bytes", part.first,
                                              part.first + part.length, part.total)
    return response


def _range_to_fetch(tag: str) -> str | None:
    """The request's single byte range as S3 takes it (`bytes=0-99`, `bytes=100-`,
    `bytes=-100`), or None for the whole file (no Range, or an If-Range that no longer
    matches). A range we cannot serve answers 416, as werkzeug does."""
    environ = request.environ
    if "HTTP_RANGE" not in environ or (
            "HTTP_IF_RANGE" in environ
            and is_resource_modified(environ, tag, ignore_if_range=False)):
        return None
    parsed = parse_range_header(environ["HTTP_RANGE"])
    if parsed is None or len(parsed.ranges) != 1:
        raise RequestedRangeNotSatisfiable()
    start, stop = parsed.ranges[0]
    if start < 0:
        return f"bytes={start}"  # the last -start bytes
    return f"bytes={start}-" if stop is None else f"bytes={start}-{stop - 1}"


def send_stored(storage_key: str, media_type: str, name: str, *, inline: bool = False) -> Response:
    """A file from the store, under its display name, never cached by the browser."""
    response = stream_stored(storage_key, media_type, name=name, inline=inline)
    if response is None:  # the database names it, so the store has lost it: an error
        raise FileNotFoundError(f"stored file {storage_key} is missing")
    return response


def certificate_response(public_id: str) -> Response:
    stored = stored_file_of(public_id)
    if stored is None:
        abort(404)
    public_id, storage_key = stored
    response = send_stored(storage_key, "application/pdf",
                           f"approval-certificate-{public_id}.pdf")
    response.headers["Cache-Control"] = "private, no-store"
    return response


def render_deliverable(deliverable_id: int, *, error: DomainError | None = None,
                       form: Any = None, part: str | None = None) -> Response:
    if part == "viewer":  # the viewer's placeholder asking again: only the viewer
        document = board.deliverable_document(deliverable_id)
        if document is None or document["viewer"] is None:
            abort(404)
        # 286 stops htmx polling once the pages are there (or never will be).
        return render("staff/deliverable.html", block="viewer", **document,
                      status=200 if document["viewer"].pending else 286)
    context = board.deliverable_detail(deliverable_id, acting_user())
    if context is None:
        abort(404)
    status = error.status if error else 200
    return render("staff/deliverable.html", block="main", status=status,
                  error=error, form=form or MultiDict(), **context)


def act_on_deliverable(deliverable_id: int, action: Callable[[Deliverable], Any],
                       done: str) -> Any:
    """Run one domain action, commit, and show the result (inline for htmx)."""
    deliverable = get_or_404(Deliverable, deliverable_id)
    try:
        action(deliverable)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return render_deliverable(deliverable_id, error=exc, form=request.form)
    flash(done)
    if is_htmx():
        return render_deliverable(deliverable_id)
    return redirect(url_for("staff.deliverable_page", deliverable_id=deliverable_id))
