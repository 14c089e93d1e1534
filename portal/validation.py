"""What typed text may hold. One rule for every single-line field (names, titles): no
control characters (CR, LF, NUL and the rest of C0/C1) and no bidi overrides, which can
break an email header or make "evil.exe.pdf" read otherwise."""
from __future__ import annotations

import re
import unicodedata

from portal.errors import InvalidInput

# Control characters (C0, C1) and the bidi marks and overrides (a regex character class).
CONTROL_AND_BIDI = "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_FORBIDDEN = re.compile(f"[{CONTROL_AND_BIDI}]")


def single_line(value: str | None, what: str, max_len: int) -> str:
    """The value, trimmed and NFC-normalised; InvalidInput naming the field otherwise."""
    value = unicodedata.normalize("NFC", (value or "").strip())
    if not value:
        raise InvalidInput(f"{what} is required.")
    if _FORBIDDEN.search(value):
        raise InvalidInput(f"{what} contains a line break or an invisible control character; "
                           "type it on one line, without them.")
    if len(value) > max_len:
        raise InvalidInput(f"{what} is longer than {max_len} characters.")
    return value
