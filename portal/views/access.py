"""Who may reach which staff page."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user, login_required

from portal.extensions import db
from portal.models import User

F = TypeVar("F", bound=Callable[..., Any])


def acting_user() -> User:
    """The signed-in person, as the model domain functions take."""
    return current_user._get_current_object()  # type: ignore[no-any-return]


def staff_only(view: F) -> F:
    """Signed in, and allowed to change work (admin or staff; not finance)."""
    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.can_change_work:
            abort(403, "Your role can look but cannot change work.")
        return view(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def admin_only(view: F) -> F:
    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            abort(403, "Only admins can open this page.")
        return view(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def get_or_404(model: type, ident: Any) -> Any:
    return db.get_or_404(model, ident)
