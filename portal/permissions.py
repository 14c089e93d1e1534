"""Who may do what: one rule per role, one error (NotAllowed, HTTP 403) when it fails.

Domain functions call these with the acting person; the views' decorators call the same
functions, so a page and the action behind it can never disagree.
"""
from __future__ import annotations

from portal.errors import NotAllowed
from portal.models import User


def require_staff(actor: User) -> None:
    """Admins and staff change work; finance only reads."""
    if not actor.can_change_work:
        raise NotAllowed(f"Your role ({actor.role.value}) can look but cannot change work.")


def require_admin(actor: User, what: str = "do this") -> None:
    if not actor.is_admin:
        raise NotAllowed(f"Only admins can {what}.")
