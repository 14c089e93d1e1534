"""What typed text may hold. One rule for every single-line field (names, titles): no
control characters (CR, LF, NUL and the rest of C0/C1) and no bidi overrides, which can
break an email header or make "evil.exe.pdf" read otherwise.

`what` names the field as the subject of a sentence ("The title", "The contact's name"),
translated by the caller; each message below is a whole sentence around it."""
from __future__ import annotations

import re
import unicodedata

from flask_babel import gettext as _
from flask_babel import ngettext

from portal.errors import InvalidInput

# Control characters (C0, C1) and the bidi marks and overrides (a regex character class).
CONTROL_AND_BIDI = "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_FORBIDDEN = re.compile(f"[{CONTROL_AND_BIDI}]")


def single_line(value: str | None, what: str, max_len: int) -> str:
    """The value, trimmed and NFC-normalised; InvalidInput naming the field otherwise."""
    value = unicodedata.normalize("NFC", (value or "").strip())
    if not value:
        # Translators: %(what)s is a field named as a sentence's subject, e.g. "The title".
        raise InvalidInput(_("%(what)s is required.", what=what))
    if _FORBIDDEN.search(value):
        raise InvalidInput(_("%(what)s contains a line break or an invisible control "
                             "character; type it on one line, without them.", what=what))
    if len(value) > max_len:
        raise InvalidInput(ngettext("%(what)s is longer than %(num)d character.",
                                    "%(what)s is longer than %(num)d characters.",
                                    max_len, what=what))
    return value
