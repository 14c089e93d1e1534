"""Staff edit a deliverable's details: its title, description and due date.

One function, one audit event naming each field that changed (old → new). While a request
is out with the client, the title and description stay as the client was sent them (their
decision names them); the due date is ours and can move at any time.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _

from portal import audit
from portal.errors import IllegalTransition, InvalidInput
from portal.models import Deliverable, User, today_utc
from portal.permissions import require_staff
from portal.validation import single_line

MAX_DESCRIPTION = 5000


@dataclass(frozen=True)
class Details:
    title: str
    description: str
    due_date: date | None


def locked_while_with_client(deliverable: Deliverable) -> str | None:
    """Why the title and description cannot change now, or None when they can."""
    request = deliverable.open_request
    if request is None:
        return None
    return _("Version %(number)s is with the client, so its title and description stay as "
             "they were sent. Cancel the request to change them; the due date can change now.",
             number=request.version.number)


def _checked(deliverable: Deliverable, wanted: Details, today: date) -> Details:
    title = single_line(wanted.title, _("The title"), 200)
    description = (wanted.description or "").strip().replace("\r\n", "\n")
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(_("The description is longer than %(most)s characters.",
                             most=MAX_DESCRIPTION))
    due = wanted.due_date
    if due is not None and due != deliverable.due_date and due < today:
        raise InvalidInput(_("The due date %(day)s is in the past; choose today or a later "
                             "day.", day=due.isoformat()))
    return Details(title, description, due)


def edit_details(actor: User, deliverable: Deliverable, wanted: Details,
                 today: date | None = None) -> dict[str, list[str | None]]:
    """Apply the new details; returns what changed ({field: [old, new]}), empty when
    nothing did (then nothing is recorded)."""
    require_staff(actor)
    new = _checked(deliverable, wanted, today or today_utc())
    old = Details(deliverable.title, deliverable.description or "", deliverable.due_date)
    changes: dict[str, list[str | None]] = {}
    for field in ("title", "description", "due_date"):
        before, after = getattr(old, field), getattr(new, field)
        if before != after:
            changes[field] = [_text(before), _text(after)]
    locked = locked_while_with_client(deliverable)
    if locked and ("title" in changes or "description" in changes):
        raise IllegalTransition(locked)
    if not changes:
        return changes
    deliverable.title, deliverable.description = new.title, new.description
    deliverable.due_date = new.due_date
    audit.record(actor, "deliverable.edited", deliverable, deliverable=deliverable,
                 changes=changes)
    return changes


def _text(value: str | date | None) -> str | None:
    return value.isoformat() if isinstance(value, date) else value
