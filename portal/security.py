"""Response headers and session hardening for every page."""
from __future__ import annotations

from flask import Flask, Response

from portal.extensions import db, login_manager
from portal.models import User

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@login_manager.user_loader
def _load_user(session_token: str) -> User | None:
    user = db.session.query(User).filter_by(session_token=session_token).first()
    return user if user is not None and user.active else None


def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.session_protection = "strong"
    app.after_request(_headers)
