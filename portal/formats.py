"""Numbers and file sizes as a reader writes them: "1.5 MB" in English, "1,5 MB" in German,
"1,5 Mo" in French, "1,5 МБ" in Russian (CLDR, through Babel), in the language being
rendered (a page's, or an email's `in_language`). Registered as Jinja filters:
{{ n|number }}, {{ v.size|file_size }}.
"""
from __future__ import annotations

from functools import cache

from babel import Locale
from babel.numbers import format_decimal
from babel.units import format_unit
from flask import Flask
from flask_babel import get_locale

KB = 1024
MB = 1024 * 1024


@cache
def _parse(code: str) -> Locale:
    return Locale.parse(code)


def reader_locale() -> Locale:
    """The language being rendered in (a page's, or an email's or certificate's
    `in_language`); English outside any request or job context."""
    return _parse(str(get_locale() or "en"))


def format_number(n: int | float) -> str:
    """A count or amount with the locale's grouping and decimal signs ("1,234" / "1.234")."""
    return format_decimal(n, locale=reader_locale())


def format_size(n: int) -> str:
    """A file size, binary multiples as people read them: "512 bytes", "12 kB", "1.5 MB"."""
    locale = reader_locale()
    if n >= MB:
        return format_unit(n / MB, "digital-megabyte", length="short", format="#,##0.0",
                           locale=locale)
    if n >= KB:
        return format_unit(round(n / KB), "digital-kilobyte", length="short", format="#,##0",
                           locale=locale)
    return format_unit(n, "digital-byte", length="long", locale=locale)


def page_language() -> str:
    """The code of the language being rendered ("de"): what <html lang> says."""
    return reader_locale().language


def install(app: Flask) -> None:
    app.jinja_env.globals["page_language"] = page_language
    app.jinja_env.filters["number"] = format_number
    app.jinja_env.filters["file_size"] = format_size
