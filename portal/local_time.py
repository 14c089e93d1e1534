"""Times as a person reads them, in their own time zone: one rule for pages and emails.

A template rendered with `zone` in its context (a client's review page, an email to a
client, a certificate) shows every time in that zone; anything else shows UTC. The zone
travels in a context variable set around each top-level render (Flask's render_template
and jinja2-fragments' render_block both announce theirs), so `when()` in _macros.html and
the `local_when` filter work in any template and macro without being handed the zone.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, date, datetime, tzinfo
from functools import cache, lru_cache
from typing import Any
from zoneinfo import available_timezones

from babel import Locale
from babel.dates import (
    format_date,
    format_skeleton,
    get_datetime_format,
    get_timezone_name,
)
from flask import Flask, before_render_template, template_rendered
from jinja2_fragments.flask import before_render_template_block, template_block_rendered

from portal.formats import reader_locale

_shown_in: ContextVar[tzinfo | None] = ContextVar("shown_in", default=None)
_TOKEN = "_local_time_token"


@cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone a client may choose, sorted (what the chooser lists)."""
    named = sorted(name for name in available_timezones()
                   if "/" in name and not name.startswith(("Etc/", "SystemV/")))
    return (*named, "UTC")


def is_zone_name(name: str) -> bool:
    return name in zone_names()


def _abbreviation(moment: datetime) -> str:
    name = moment.tzname() or "UTC"
    return f"UTC{name}" if name[:1] in "+-" else name  # "+04" reads better as "UTC+04"


def _zone_name(local: datetime, locale: Locale) -> str:
    """The zone as the locale abbreviates it where CLDR has a name ("MEZ" in German), else
    the zone's own abbreviation ("CET", "EST", "UTC+04")."""
    if locale.language != "en" and local.tzinfo is not None:
        try:
            named = get_timezone_name(local, width="short", locale=locale,
                                      return_zone=False)
        except (LookupError, ValueError):
            named = ""
        if named and named.isalpha():
            return named
    return _abbreviation(local)


# English keeps the portal's own order ("Tue 1 Dec 2026"); other languages follow CLDR's
# skeletons ("Di., 1. Dez. 2026", "mar. 1 déc. 2026").
_ENGLISH = {"day_year": "EEE d MMM y", "day": "EEE d MMM", "long_day": "EEEE d MMMM y"}


def format_day_as(day: date, skeleton: str, english: str, locale: Locale | None = None) -> str:
    """The one rule for a calendar day: English keeps the portal's own pattern (`english`),
    every other language CLDR's form of `skeleton` ("full": its long date)."""
    return _day_as(day, skeleton, english, locale or reader_locale())


@lru_cache(maxsize=4096)
def _day_as(day: date, skeleton: str, english: str, locale: Locale) -> str:
    # Kept: a day reads the same every time in a language, and a thread repeats its days
    # (Babel parses the pattern on every call).
    if locale.language == "en":
        return format_date(day, english, locale=locale)
    if skeleton == "full":
        return format_date(day, "full", locale=locale)
    return format_skeleton(skeleton, day, locale=locale)


def _date(day: date, kind: str, skeleton: str, locale: Locale) -> str:
    return format_day_as(day, skeleton, _ENGLISH[kind], locale)


def format_when(moment: datetime, zone: tzinfo | None = None) -> str:
    """"Tue 1 Dec 2026, 14:05 CET" (de: "Di., 1. Dez. 2026, 14:05 MEZ"): weekday, day,
    month, year, time and the zone's name, in the language being rendered."""
    local = moment.astimezone(zone or UTC)
    locale = reader_locale()
    day = _date(local.date(), "day_year", "yMMMEd", locale)
    clock = f"{local:%H:%M} {_zone_name(local, locale)}"
    return _date_and_time(locale).replace("{1}", day).replace("{0}", clock)


@cache
def _date_and_time(locale: Locale) -> str:
    """How the language joins a day and a time ("{1}, {0}")."""
    return str(get_datetime_format("medium", locale=locale))


def format_day(day: date) -> str:
    """"Fri 4 Dec" (a due date: a calendar day, the same in every zone)."""
    return _date(day, "day", "MMMEd", reader_locale())


def format_long_day(day: date) -> str:
    """"Friday 4 December 2026" (de: "Freitag, 4. Dezember 2026")."""
    return _date(day, "long_day", "full", reader_locale())


def shown_zone() -> tzinfo | None:
    return _shown_in.get()


@contextmanager
def shown_in(zone: tzinfo | None) -> Iterator[None]:
    """Times rendered meanwhile are in `zone` (None: UTC)."""
    token = _shown_in.set(zone)
    try:
        yield
    finally:
        _shown_in.reset(token)


def local_when(moment: datetime | None) -> str:
    """The `local_when` filter: a time in the zone of the page being rendered."""
    return format_when(moment, _shown_in.get()) if moment else ""


def _enter(_app: Flask, context: dict[str, Any], **_extra: Any) -> None:
    zone = context.get("zone")
    context[_TOKEN] = _shown_in.set(zone if isinstance(zone, tzinfo) else None)


def _leave(_app: Flask, context: dict[str, Any], **_extra: Any) -> None:
    token: Token[tzinfo | None] | None = context.pop(_TOKEN, None)
    if token is not None:
        _shown_in.reset(token)


def _forget(_exc: BaseException | None = None) -> None:
    # A render that raised never announced its end: nothing may carry to the next one.
    _shown_in.set(None)


def install(app: Flask) -> None:
    for start, end in ((before_render_template, template_rendered),
                       (before_render_template_block, template_block_rendered)):
        start.connect(_enter, app, weak=False)
        end.connect(_leave, app, weak=False)
    app.teardown_appcontext(_forget)
    app.jinja_env.filters["local_when"] = local_when
    app.jinja_env.filters["day"] = format_day
    app.jinja_env.filters["long_day"] = format_long_day
    from portal import formats  # numbers and sizes follow the same language

    formats.install(app)
