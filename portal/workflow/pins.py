"""Where on the document a comment points: a page, and a spot or a box on it.

Positions are fractions of the page (0..1), so a pin survives zoom and resolution. Input
arrives as form strings from a tap or a drag (or a page chosen from a list without
JavaScript); anything out of range is refused with a plain message.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

from portal.errors import InvalidInput
from portal.extensions import db
from portal.models import VersionRender

PAGE_NUMBER = re.compile(r"[0-9]{1,5}")  # ASCII digits only: "²" is a digit to str.isdigit


@dataclass(frozen=True)
class Pin:
    page: int
    x: float | None = None
    y: float | None = None
    w: float | None = None
    h: float | None = None


def _fraction(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(_("The pin's %(name)s is not a number.", name=name)) from None
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise InvalidInput(_("The pin must be on the page."))
    return round(value, 4)


def pin_from_form(form: Mapping[str, str]) -> Pin | None:
    """A Pin from `page`, `x`, `y` (and `w`, `h` for a box); None when no page is given."""
    page_raw = (form.get("page") or "").strip()
    if not page_raw:
        return None
    if not PAGE_NUMBER.fullmatch(page_raw) or int(page_raw) < 1:
        raise InvalidInput(_("Choose a page from the list."))
    x_raw, y_raw = (form.get("x") or "").strip(), (form.get("y") or "").strip()
    if not x_raw or not y_raw:
        return Pin(int(page_raw))
    x, y = _fraction(x_raw, "position"), _fraction(y_raw, "position")
    w_raw, h_raw = (form.get("w") or "").strip(), (form.get("h") or "").strip()
    if not w_raw or not h_raw:
        return Pin(int(page_raw), x, y)
    w, h = _fraction(w_raw, "width"), _fraction(h_raw, "height")
    if w <= 0 or h <= 0 or x + w > 1.0001 or y + h > 1.0001:
        raise InvalidInput(_("The box must be on the page."))
    return Pin(int(page_raw), x, y, w, h)


def check_pin(pin: Pin, version_id: int) -> None:
    """The page must exist in the version's preview (when there is one)."""
    pages = db.session.scalar(select(VersionRender.page_count).where(
        VersionRender.version_id == version_id))
    if pages and pin.page > pages:
        raise InvalidInput(ngettext("This document has %(num)d page; there is no page %(page)s.",
                                    "This document has %(num)d pages; there is no page "
                                    "%(page)s.", pages, page=pin.page))
