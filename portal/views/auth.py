"""Staff sign-in and sign-out, how a session finds its user, and each person's own
account page (the language of their staff pages, and their API tokens)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import refresh
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from portal.errors import DomainError
from portal.extensions import db, limiter, login_manager
from portal.models import Role, User
from portal.models.base import utcnow
from portal.people.accounts import authenticate, set_own_language, sign_out_everywhere
from portal.people.api_tokens import tokens_of

bp = Blueprint("auth", __name__)
login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please sign in to continue.")
login_manager.localize_callback = str  # flashed in the page's language, as a plain string
login_manager.session_protection = "strong"


@login_manager.user_loader
def _load_user(session_token: str) -> User | None:
    """Sessions hold the user's rotating session token, never the row id."""
    user = db.session.scalar(select(User).where(User.session_token == session_token))
    return user if user is not None and user.active else None


def _safe_next(target: str | None) -> str:
    """Only same-site paths; anything else (//evil.example, https://…) goes home."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") \
                and not target.startswith("//") and "\\" not in target:
            return target
    if current_user.is_authenticated and current_user.role == Role.FINANCE:
        return url_for("finance.approved")
    return url_for("staff.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"],
               deduct_when=lambda response: response.status_code == 401)  # failures only
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    error, email = None, ""
    if request.method == "POST":
        email = request.form.get("email", "")
        user = authenticate(email, request.form.get("password", ""))
        if user is None:
            error = _("That email and password do not match an active account.")
        else:
            db.session.commit()  # a rehashed password, if any
            session.clear()  # nothing planted before sign-in survives it
            login_user(user, remember=bool(request.form.get("remember")))
            return redirect(_safe_next(request.args.get("next")))
    status = 401 if error else 200
    return render_template("auth/login.html", error=error, email=email), status


@bp.post("/logout")
@login_required
def logout():
    sign_out_everywhere(current_user._get_current_object())
    db.session.commit()
    logout_user()
    flash(_("You are signed out."))
    return redirect(url_for("auth.login"))


def account_page(status: int = 200, **context: Any) -> tuple[str, int]:
    """The account page: language, and API tokens, with a new token's secret the one time
    it is shown (`new_token`, only in the answer to its creation)."""
    user, now = current_user._get_current_object(), utcnow()
    context.setdefault("chosen", user.language or "")
    context.setdefault("new_token", None)
    return render_template("auth/account.html", tokens=tokens_of(user), now=now,
                           first_expiry=(now.date() + timedelta(days=1)).isoformat(),
                           **context), status


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """Who is signed in, the language of their staff pages (their own choice only), and
    their API tokens (views/api_tokens.py)."""
    user = current_user._get_current_object()
    if request.method == "GET":
        return account_page()
    try:
        set_own_language(user, request.form.get("language"))
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return account_page(exc.status, error=exc, chosen=request.form.get("language", ""))
    refresh()  # the message below is in the language just chosen
    flash(_("Your language is saved."))
    return redirect(url_for("auth.account"))
