"""A NUL, which no PostgreSQL text column can hold, is refused at the door of every page and
form with a clear message, instead of failing at the write (a 500). The API refuses it per
field, in its schemas; a JSON body spelling half a character ("\ud800"), which no database
can keep either, is refused here for every field at once. (Forms and queries cannot carry
one: Werkzeug decodes them with replacement.)"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from flask import request
from flask_babel import gettext as _
from werkzeug.exceptions import UnprocessableEntity

from portal.api.problems import is_api_url
from portal.errors import InvalidInput


def _texts() -> Iterable[str]:
    for source in (request.args, request.form):
        for key, value in source.items(multi=True):
            yield key
            yield value


def _half_characters(value: Any, where: str = "") -> Iterator[str]:
    """Where in a JSON body a string holds half a character ("\ud800" is valid JSON)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            yield where or "(body)"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _half_characters(key, where)
            yield from _half_characters(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _half_characters(item, f"{where}[{n}]")


def refuse_unstorable_text() -> None:
    if is_api_url():  # NULs are refused per field by the schemas; half characters here
        body = request.get_json(silent=True) if request.is_json else None
        broken = sorted(set(_half_characters(body)))
        if broken:
            refusal = UnprocessableEntity(_("The text is not valid Unicode."))
            refusal.data = {"messages": {"json": {  # type: ignore[attr-defined]
                place: [_("The text is not valid Unicode.")] for place in broken}}}
            raise refusal
        return
    if any("\x00" in text for text in _texts()):
        raise InvalidInput(_("What was sent contains a NUL character, which cannot be kept. "
                             "Nothing was saved; remove it and send it again."))
