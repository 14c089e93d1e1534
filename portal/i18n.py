"""Languages: which one a page or an email is in, and the catalogues behind them.

One rule for who reads what: an approver's own choice on their page, else their contact's
language (set by staff), else the client's, else the portal's (PORTAL_LANGUAGE). Staff pages
follow the person's own choice, else the browser's, else the portal's. Emails, pages and
certificates for a client are rendered inside `in_language(code)`; everything else follows
`select_locale` for the request at hand.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, force_locale, refresh

if TYPE_CHECKING:
    from portal.models import Approver, Contact, ReviewRequest

TRANSLATIONS = Path(__file__).resolve().parent / "translations"

# Each language named in itself: that is how a reader finds their own in a list.
LANGUAGES: dict[str, str] = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "ru": "Русский",
}

babel = Babel()


def is_language(code: str | None) -> bool:
    return code in LANGUAGES


def portal_language() -> str:
    code = current_app.config.get("PORTAL_LANGUAGE", "en")
    return code if is_language(code) else "en"


def first_language(*codes: str | None) -> str:
    """The first shipped language among `codes` (a person's own choices, most particular
    first), else the portal's: the one fallback rule, for pages and emails alike."""
    return next((code for code in codes if is_language(code)), None) or portal_language()


def contact_language(contact: Contact) -> str:
    """The language staff chose for this contact, else their client's, else the portal's."""
    return first_language(contact.language, contact.client.language)


def approver_language(approver: Approver) -> str:
    """What this approver reads: their own switch on the page, else their contact's."""
    return first_language(approver.language, approver.contact.language,
                          approver.contact.client.language)


class InReadersLanguage:
    """Words worked out when an email is rendered, in the reader's language (a sentence with
    names in it). Unlike flask_babel.LazyString it has no __html__, so Jinja escapes it as
    any other text: the names inside are typed by people, clients among them."""

    __slots__ = ("_args", "_words")

    def __init__(self, words: Callable[..., object], *args: object) -> None:
        self._words, self._args = words, args

    def __str__(self) -> str:
        return str(self._words(*self._args))


@contextmanager
def in_language(code: str) -> Iterator[None]:
    """Text, dates and numbers produced meanwhile are in `code` (an email, a certificate)."""
    with force_locale(code if is_language(code) else portal_language()):
        yield


def use_language(code: str) -> None:
    """The rest of this request is in `code` (a client page, in its approver's language)."""
    g.page_language = code if is_language(code) else portal_language()
    refresh()


def select_locale() -> str:
    chosen = g.get("page_language")
    if chosen:
        return chosen
    if has_request_context():
        # Only a person already loaded for this request: choosing words must never be what
        # queries the database (an error page has to speak while the database is down).
        own = getattr(g.get("_login_user"), "language", None)
        if is_language(own):
            return own
        best = request.accept_languages.best_match(LANGUAGES)
        if best:
            return best
    return portal_language()


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories=str(TRANSLATIONS))
    app.jinja_env.globals["languages"] = LANGUAGES


def request_language(review_request: ReviewRequest) -> str:
    """What a request's certificate is issued in: the language its approvers read when they
    all read the same one, else the client's, else the portal's."""
    spoken = {approver_language(a) for a in review_request.approvers}
    if len(spoken) == 1:
        return spoken.pop()
    client = review_request.version.deliverable.project.client
    return client.language if is_language(client.language) else portal_language()
