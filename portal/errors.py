"""Domain errors. Views turn each into a clear page with the status given here."""
from __future__ import annotations

from flask_babel import gettext as _


class DomainError(Exception):
    """A move the rules do not allow right now (HTTP 409)."""

    status = 409

    def __init__(self, message: str) -> None:
        # str(): a lazy_gettext constant is put into words now, in the language at hand.
        message = str(message)
        super().__init__(message)
        self.message = message


class IllegalTransition(DomainError):
    pass


class Incomplete(DomainError):
    """Several things are missing; every one of them is listed."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(_("This cannot go out yet. Missing: %(items)s.",
                           items="; ".join(str(item) for item in missing)))
        self.missing = missing


class NotAllowed(DomainError):
    status = 403


class InvalidInput(DomainError):
    status = 422


class UnsupportedFile(DomainError):
    status = 415
