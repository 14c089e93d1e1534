"""Admin pages. The outbox page exists only in the embedded (dev) setup."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from sqlalchemy import select

from portal.extensions import db
from portal.models import OutboxMessage
from portal.views.access import admin_only, get_or_404

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _dev_only() -> None:
    if not current_app.config["DEV_OUTBOX"]:
        abort(404)


@bp.get("/outbox")
@admin_only
def outbox():
    _dev_only()
    messages = db.session.scalars(
        select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(200)
    ).all()
    return render_template("admin/outbox.html", messages=messages)


@bp.get("/outbox/<int:message_id>")
@admin_only
def outbox_message(message_id: int):
    _dev_only()
    return render_template("admin/outbox_message.html",
                           message=get_or_404(OutboxMessage, message_id))


@bp.get("/outbox/<int:message_id>/html")
@admin_only
def outbox_message_html(message_id: int):
    """The HTML body as the recipient's mail client would show it, sandboxed."""
    _dev_only()
    response = current_app.response_class(get_or_404(OutboxMessage, message_id).body_html,
                                          mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "frame-ancestors 'self'"
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
