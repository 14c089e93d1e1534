"""One rule for closing a client's ask (a condition of an approval, a point from a comment):
done in a later version of the same deliverable, with an optional note, or declined with a
reason the client will see."""
from __future__ import annotations

from flask_babel import gettext as _

from portal.errors import InvalidInput
from portal.models import Version
from portal.validation import single_line

MAX_NOTE_LEN = 500


def checked_resolution(done: bool, version: Version | None, origin: Version, note: str, *,
                       choose: str, later: str) -> tuple[Version | None, str]:
    """The version and note to record; `choose` and `later` say what is missing or wrong
    about the version in the words of the caller's subject."""
    if not done:
        return None, single_line(note, _("The reason the client will see"), MAX_NOTE_LEN)
    if version is None:
        raise InvalidInput(choose)
    if version.deliverable_id != origin.deliverable_id or version.number <= origin.number:
        raise InvalidInput(later)
    return version, single_line(note, _("The note"), MAX_NOTE_LEN) if note else ""
