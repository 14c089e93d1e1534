"""Error pages for clients: in their own layout, in plain words, with a way forward.

A client has no account, so no error under /r/ or /review/ may send them to the staff
sign-in, show the framework's stock text, or name a document (the URL alone is not a
secret). The way forward is their review page, which knows what their link is worth now.
"""
from __future__ import annotations

import re

from flask import current_app, render_template, request, url_for
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

CLIENT_PREFIXES = ("/r/", "/review/")
PUBLIC_ID = re.compile(r"^/review/([A-Za-z0-9_-]{1,64})(?:/|$)")
UNAVAILABLE = "errors/client_unavailable.html"  # asks the database nothing

# What a client reads for each status, whatever the framework would have said.
WORDS: dict[int, tuple[LazyString, LazyString]] = {
    400: (_l("This page had expired"),
          _l("The page was open a long time (or this browser's cookies were cleared), so "
             "what you sent could not be checked and nothing was saved. Open your review page "
             "again and send it once more.")),
    403: (_l("This link cannot be used here"),
          _l("This link has expired or been replaced. Your review page shows what to do "
             "next.")),
    404: (_l("We could not find that page"),
          _l("The address may be incomplete. The link in the email we sent you always works "
             "best.")),
    405: (_l("We could not find that page"),
          _l("The address may be incomplete. The link in the email we sent you always works "
             "best.")),
    409: (_l("This page is out of date"),
          _l("Something changed since this page was opened. Nothing was saved.")),
    413: (_l("That was too large"), _l("Nothing was saved. Please send something smaller.")),
    429: (_l("Too many tries in a short time"),
          _l("Please wait a minute, then try again. Nothing was lost.")),
    500: (_l("Something went wrong on our side"),
          _l("Nothing was saved. Please try again in a moment.")),
    503: (_l("Please try again in a moment"),
          _l("We cannot reach our records right now. Nothing was saved; try again shortly.")),
}


def is_client_url() -> bool:
    return request.blueprint == "client" or request.path.startswith(CLIENT_PREFIXES)


def _review_url() -> str | None:
    """The review page this URL belongs to, if it names one."""
    match = PUBLIC_ID.match(request.path)
    return url_for("client.review", public_id=match.group(1)) if match else None


def client_words(status: int, message: str | None = None) -> tuple[str, str]:
    """The title and text a client reads; `message` is ours when the code that failed
    said why (never the framework's default text)."""
    title, words = WORDS.get(status, WORDS[500 if status >= 500 else 404])
    if status == 429:  # the limiter's own text is a rate ("10 per 1 minute")
        message = None
    return str(title), message or str(words)


def client_error_page(status: int, message: str | None = None, *,
                      unavailable: bool = False) -> str:
    title, text = client_words(status, message)
    context = {"status": status, "title": title, "message": text, "review_url": _review_url()}
    if unavailable:  # straight from the environment: no context processor asks the database
        return current_app.jinja_env.get_template(UNAVAILABLE).render(**context)
    return render_template("client/error.html", **context)
