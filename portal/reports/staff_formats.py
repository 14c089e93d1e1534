"""Days and figures on the staff pages (metrics) in the reader's language.

English keeps the agency's day-month order ("3 Mar 2025", "week of 3 Mar 2025"); every
other language uses its own CLDR form ("3. März 2025", "3 mars 2025"). The language is
Flask-Babel's for the page or email being rendered (portal.i18n.select_locale).
"""
from __future__ import annotations

from datetime import date

from babel.numbers import format_decimal, format_percent

from portal.formats import reader_locale
from portal.local_time import format_day_as

# English patterns, as the pages said them before they were translatable.
_ENGLISH = {"MMMd": "d MMM", "yMMM": "MMM y", "yMMMM": "LLLL y", "yMMMd": "d MMM y"}


def _day(day: date, skeleton: str) -> str:
    return format_day_as(day, skeleton, _ENGLISH[skeleton])


def day_month(day: date) -> str:
    """"3 Mar", "3. März"."""
    return _day(day, "MMMd")


def month_year(day: date) -> str:
    """"Mar 2025", "März 2025"."""
    return _day(day, "yMMM")


def long_month_year(day: date) -> str:
    """"March 2025", "März 2025"."""
    return _day(day, "yMMMM")


def day_month_year(day: date) -> str:
    """"3 Mar 2025", "3. März 2025"."""
    return _day(day, "yMMMd")


def decimal(value: float | None, empty: str = "\N{EM DASH}") -> str:
    """One decimal place: "2.5", "2,5"."""
    return empty if value is None else format_decimal(value, "0.0", locale=reader_locale())


def percent(value: int | None, empty: str = "\N{EM DASH}") -> str:
    """A whole percentage: "67%", "67 %"."""
    return empty if value is None else format_percent(value / 100, locale=reader_locale())


def capitalised(text: str) -> str:
    """The first letter upper-case, the rest as written (unlike Jinja's capitalize)."""
    return text[:1].upper() + text[1:]
