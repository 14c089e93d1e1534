"""A NUL, which no PostgreSQL text column can hold, is refused at the door of every page and
form with a clear message, instead of failing at the write (a 500). The API refuses it per
field, in its schemas. (Forms and queries cannot carry half a character: Werkzeug decodes
them with replacement.)"""
from __future__ import annotations

from collections.abc import Iterable

from flask import request
from flask_babel import gettext as _

from portal.api.problems import is_api_url
from portal.errors import InvalidInput


def _texts() -> Iterable[str]:
    for source in (request.args, request.form):
        for key, value in source.items(multi=True):
            yield key
            yield value


def refuse_unstorable_text() -> None:
    if is_api_url():
        return
    if any("\x00" in text for text in _texts()):
        raise InvalidInput(_("What was sent contains a NUL character, which cannot be kept. "
                             "Nothing was saved; remove it and send it again."))
