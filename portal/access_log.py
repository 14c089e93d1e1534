"""Magic-link tokens never reach a log: the access log lines of `/r/<token>` are redacted.

The token is a bearer credential for a client's review, so the request line (and a Referer
that carries it) is rewritten before Werkzeug's development server or Gunicorn writes it.
Gunicorn picks this up from gunicorn.conf.py (`logger_class`); Werkzeug through a filter
that create_app installs.
"""
from __future__ import annotations

import logging
import re
from typing import Any

TOKEN_PATH = re.compile(r"/r/[^\s?#\"']+")
REDACTED = "/r/[token]"


def redact(text: str) -> str:
    return TOKEN_PATH.sub(REDACTED, text)


class RedactTokens(logging.Filter):
    """For the 'werkzeug' logger: its request line arrives as a %-argument."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install_werkzeug_filter() -> None:
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())


try:  # Gunicorn is how production serves the app; the portal runs without it too
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # pragma: no cover - only without gunicorn installed
    _GunicornLogger = object  # type: ignore[assignment,misc]


class GunicornLogger(_GunicornLogger):  # type: ignore[misc,valid-type]
    """Gunicorn's logger with the request line, path and Referer atoms redacted."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)  # type: ignore[misc]
        for key in ("r", "U", "f", "{referer}i"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms
