"""Admin pages: users and roles, webhooks, and (in development only) the outbox."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from portal.errors import DomainError, InvalidInput
from portal.extensions import db
from portal.models import OutboxMessage, Role, User, WebhookDelivery, WebhookEndpoint
from portal.notifications import webhooks
from portal.people import accounts
from portal.views.common import acting_user, admin_only, get_or_404

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


@bp.route("/users", methods=["GET", "POST"])
@admin_only
def users():
    error = None
    if request.method == "POST":
        try:
            user = accounts.create_user(acting_user(), request.form.get("email", ""),
                                        request.form.get("name", ""),
                                        request.form.get("password", ""),
                                        _role(request.form.get("role")))
            db.session.commit()
            flash(_("Account created for %(email)s.", email=user.email))
            return redirect(url_for("admin.users"))
        except DomainError as exc:
            db.session.rollback()
            error = exc
    everyone = db.session.scalars(select(User).order_by(User.active.desc(), User.name)).all()
    return render_template("admin/users.html", users=everyone, roles=list(Role), error=error,
                           form=request.form), (error.status if error else 200)


def _role(raw: str | None) -> Role:
    if raw not in {r.value for r in Role}:
        raise InvalidInput(_("Choose a role: admin, staff or finance."))
    return Role(raw)


@bp.post("/users/<int:user_id>")
@admin_only
def update_user(user_id: int):
    user = get_or_404(User, user_id)
    try:
        accounts.update_user(acting_user(), user, role=_role(request.form.get("role")),
                             active=request.form.get("active") == "1")
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message)
        return redirect(url_for("admin.users")), 303
    role = {Role.ADMIN: _("admin"), Role.STAFF: _("staff"), Role.FINANCE: _("finance")}[user.role]
    flash(_("%(name)s is now %(role)s.", name=user.name, role=role) if user.active else
          _("%(name)s is now %(role)s, switched off.", name=user.name, role=role))
    return redirect(url_for("admin.users"))


@bp.route("/webhooks", methods=["GET", "POST"])
@admin_only
def webhook_endpoints():
    error = None
    if request.method == "POST":
        try:
            endpoint = webhooks.register(acting_user(), request.form.get("url", ""),
                                         request.form.get("description", ""),
                                         request.form.get("allow_private") == "1")
            db.session.commit()
            flash(_("Endpoint registered. Its secret is shown below."))
            return redirect(url_for("admin.webhook_endpoint", endpoint_id=endpoint.id))
        except DomainError as exc:
            db.session.rollback()
            error = exc
    endpoints = db.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
    return render_template("admin/webhooks.html", endpoints=endpoints, error=error,
                           form=request.form, events=webhooks.EVENTS), \
        (error.status if error else 200)


@bp.get("/webhooks/<int:endpoint_id>")
@admin_only
def webhook_endpoint(endpoint_id: int):
    endpoint = get_or_404(WebhookEndpoint, endpoint_id)
    deliveries = db.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc()).limit(200)).all()
    return render_template("admin/webhook.html", endpoint=endpoint, deliveries=deliveries)


def _back_to_endpoint(endpoint_id: int, done: str):
    """Commit an admin's webhook action and show its endpoint again."""
    db.session.commit()
    flash(done)
    return redirect(url_for("admin.webhook_endpoint", endpoint_id=endpoint_id))


@bp.post("/webhooks/deliveries/<int:delivery_id>/resend")
@admin_only
def resend_webhook(delivery_id: int):
    delivery = get_or_404(WebhookDelivery, delivery_id)
    webhooks.resend(acting_user(), delivery)
    return _back_to_endpoint(delivery.endpoint_id, _("Event %(event)s queued again.",
                                                     event=delivery.event_id))


@bp.post("/webhooks/<int:endpoint_id>/active")
@admin_only
def webhook_active(endpoint_id: int):
    endpoint = get_or_404(WebhookEndpoint, endpoint_id)
    active = request.form.get("active") == "1"
    webhooks.set_active(acting_user(), endpoint, active)
    return _back_to_endpoint(endpoint_id, _("Endpoint switched on: waiting events go out at "
                                            "the next relay.") if active else
                             _("Endpoint switched off: it gets no new events and nothing is "
                               "sent to it."))


@bp.post("/webhooks/<int:endpoint_id>/rotate")
@admin_only
def rotate_webhook_secret(endpoint_id: int):
    webhooks.rotate_secret(acting_user(), get_or_404(WebhookEndpoint, endpoint_id))
    return _back_to_endpoint(endpoint_id, _("New secret below: give it to the receiver; the "
                                            "old one no longer signs anything."))
