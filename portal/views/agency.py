"""The agency's identity: the admin's page, and the logo and stylesheet clients load."""
from __future__ import annotations

from collections.abc import Callable

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.wrappers import Response
from flask_babel import gettext as _

from portal.errors import DomainError, InvalidInput
from portal.extensions import db
from portal.models import AgencyProfile, utcnow
from portal.people import agency as identity
from portal.people.colours import explain, palette
from portal.views.common import acting_user, admin_only

bp = Blueprint("agency", __name__)
YEAR = 31536000
# An SVG opened on its own runs nothing and loads nothing (as a version's SVG file).
LOGO_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def shown_agency() -> AgencyProfile:
    """The profile pages show, read once per request (or job)."""
    if "agency_profile" not in g:
        g.agency_profile = identity.current()
    return g.agency_profile


def _page(error: DomainError | None = None, status: int = 200, form: object = None
          ) -> tuple[str, int]:
    profile = shown_agency()
    colours = identity.colours(profile)
    return render_template("admin/agency.html", profile=profile, colours=colours,
                           explanation=explain(colours), error=error, form=form or {},
                           address=current_app.config["MAIL_DEFAULT_SENDER"],
                           from_header=identity.from_header(
                               profile, current_app.config["MAIL_DEFAULT_SENDER"])), status


def _act(action: Callable[[], object], done: str):
    try:
        action()
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        g.pop("agency_profile", None)
        return _page(exc, exc.status, request.form)
    g.pop("agency_profile", None)
    flash(done)
    return redirect(url_for("agency.settings"))


@bp.get("/admin/agency")
@admin_only
def settings():
    return _page()


@bp.post("/admin/agency")
@admin_only
def save():
    def update() -> None:
        profile = identity.update_identity(
            acting_user(), request.form.get("name", ""), request.form.get("sender_name", ""),
            request.form.get("accent", ""), utcnow())
        flash(explain(identity.colours(profile)))
    return _act(update, _("Agency identity saved."))


@bp.post("/admin/agency/logo")
@admin_only
def upload_logo():
    upload = request.files.get("logo")
    # One byte over the largest logo allowed is enough to refuse it.
    data = upload.stream.read(identity.PNG_MAX_BYTES + 1) if upload else b""

    def store() -> None:
        if not data:
            raise InvalidInput(_("Choose a PNG or SVG file for the logo."))
        identity.set_logo(acting_user(), data, utcnow())
    return _act(store, _("Logo saved."))


@bp.post("/admin/agency/logo/remove")
@admin_only
def remove_logo():
    return _act(lambda: identity.remove_logo(acting_user(), utcnow()), _("Logo removed."))


def _cached(response: Response, version: str | None, current: str) -> Response:
    """A year (immutable) for the current version's URL; otherwise ask again each time."""
    if version == current:
        response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/agency/logo")
def logo():
    profile = db.session.get(AgencyProfile, 1)
    if profile is None or profile.logo is None or profile.logo_type is None:
        return Response(_("No logo"), status=404, mimetype="text/plain")
    response = Response(profile.logo, mimetype=profile.logo_type)
    response.headers["Content-Security-Policy"] = LOGO_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = "inline"
    response.set_etag(profile.logo_sha256 or "")
    return _cached(response.make_conditional(request), request.args.get("v"),
                   profile.version)


@bp.get("/brand.css")
def stylesheet():
    profile = shown_agency()
    # Straight from the environment: no context processors, so no user is loaded.
    css = current_app.jinja_env.get_template("agency/brand.css").render(
        colours=identity.colours(profile))
    response = Response(css, mimetype="text/css")
    response.set_etag(profile.version)
    return _cached(response.make_conditional(request), request.args.get("v"),
                   profile.version)


def install(app: Flask) -> None:
    """Templates ask `brand()` for the profile; the layouts link the stylesheet by
    version so a change reaches every browser at once."""
    app.jinja_env.globals["brand"] = shown_agency
    app.jinja_env.globals["palette"] = palette
    app.register_blueprint(bp)
