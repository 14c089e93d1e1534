"""Text in templates that does not go through gettext: what tests/test_catalogues.py fails on.

Jinja's own lexer splits a template into its tags and the raw text between them; the text
outside {% trans %} blocks is then read as HTML (Jinja expressions stand in as a marker), and
every text node or readable attribute (alt, title, placeholder, aria-label …) that still holds
a word is reported. Words that are names, not language (the product, file formats, units),
are allowed.

    .venv/bin/python -m tests.i18n_text [template files…]   # default: every template
"""
from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

from jinja2 import Environment

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
MARK = "\x00"
READABLE_ATTRIBUTES = {"alt", "title", "placeholder", "aria-label", "aria-description",
                       "aria-roledescription", "aria-valuetext", "label", "content"}
# Not language: names and symbols every locale writes the same way.
NOT_WORDS = {"Signoff", "PDF", "PNG", "JPEG", "SVG", "SHA-256", "SHA256", "PAdES", "UTC",
             "CSV", "JSON", "HTML", "URL", "ID", "OK", "px", "KB", "MB", "GB",
             "\u00d8", "\u00d7", "\u2026", "HMAC", "SMTP", "RQ", "IP", "eml", "msg",
             "de", "en", "fr", "es", "ru"}
WORD = re.compile(r"[^\W\d_][\w'\u2019.-]*", re.UNICODE)
ENTITY = re.compile(r"&#?\w+;")


def _words(text: str) -> list[str]:
    text = ENTITY.sub(" ", text.replace(MARK, " "))
    # A word has a small letter: "XXXX" in a format hint and acronyms are not language.
    return [w for w in WORD.findall(text)
            if w.strip(".-'\u2019") not in NOT_WORDS and any(c.islower() for c in w)]


GETTEXT_CALLS = {"_", "gettext", "ngettext", "pgettext", "npgettext"}
# A string literal in an expression that reads as a phrase ("Send me a new link"), as a
# macro argument or a {% set %}, is text too; identifiers, URLs and classes are not.
PHRASE = re.compile(r"^[^\W\d_][^\W\d_'\u2019]*(?: +[\w'\u2019,.:;!?()%-]+)+[.!?:]?$", re.UNICODE)


def _outside_gettext(source: str) -> tuple[str, list[str]]:
    """The template's raw text with every Jinja tag and expression replaced by MARK (the
    text of {% trans %} … {% endtrans %} blocks dropped: it is translated), and the phrases
    written as string literals outside gettext calls."""
    env = Environment(extensions=["jinja2.ext.i18n"])
    pieces: list[str] = []
    phrases: list[str] = []
    in_trans = 0
    first_in_block = False
    previous = ""
    calls: list[str] = []
    for _line, kind, value in env.lex(source):
        if kind == "whitespace":
            continue
        if kind in ("block_begin", "variable_begin"):
            pieces.append(MARK)
            first_in_block = kind == "block_begin"
            calls = []
            continue
        if kind == "name" and first_in_block:
            in_trans += {"trans": 1, "endtrans": -1}.get(value, 0)
        first_in_block = False
        if kind == "operator" and value == "(":
            calls.append(previous)
        elif kind == "operator" and value == ")" and calls:
            calls.pop()
        elif kind == "string" and not GETTEXT_CALLS.intersection(calls) \
                and PHRASE.match(value[1:-1]) and _words(value):
            phrases.append(value)
        elif kind == "data":
            pieces.append(MARK if in_trans else value)
        previous = value if kind == "name" else ""
    return "".join(pieces), phrases


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        kinds = dict(attrs)
        for name, value in attrs:
            readable = name in READABLE_ATTRIBUTES or (
                tag == "input" and name == "value"
                and kinds.get("type") in ("submit", "button", "reset"))
            if value and "://" in value and " " not in value.strip():
                readable = False  # an example address
            if tag == "meta" and name == "content" and kinds.get("name") not in (
                    "description",):
                readable = False
            if readable and value and _words(value):
                self.found.append(f'{tag} {name}="{value.replace(MARK, "{{…}}")}"')

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and _words(data):
            self.found.append(" ".join(data.replace(MARK, "{{…}}").split()))


def untranslated(path: Path) -> list[str]:
    text, phrases = _outside_gettext(path.read_text(encoding="utf-8"))
    reader = _Reader()
    reader.feed(text)
    reader.close()
    return reader.found + phrases


def templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.suffix in (".html", ".txt"))


def main(argv: list[str]) -> int:
    paths = [Path(a).resolve() for a in argv] or templates()
    bad = 0
    for path in paths:
        for text in untranslated(path):
            bad += 1
            print(f"{path.relative_to(ROOT)}: {text[:120]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
