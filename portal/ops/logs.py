"""Log lines with a request id, as JSON when LOG_FORMAT=json, never with a credential.

Every request gets an id: a well-formed incoming X-Request-Id (a proxy's or a caller's) or
a new one. It is echoed in the response, stamped on every log line written while the
request runs, and carried into the jobs the request enqueues (RQ job meta, or the
in-process runner's job), whose worker logs under it in turn. A job that enqueues more
jobs (the sweep) hands its own id on, so one id follows a change from the click to the
email.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, g, request

from portal.access_log import redact

HEADER = "X-Request-Id"
request_log = logging.getLogger("portal.request")
# Safe to echo and to log: letters, digits and a few separators, and not too long.
_VALID = re.compile(r"[A-Za-z0-9._:@+=-]{1,128}")
_NONE = "-"

current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "signoff_request_id", default=_NONE)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accepted_request_id(incoming: str | None) -> str:
    """The caller's id when it is safe to carry, else a new one."""
    if incoming and _VALID.fullmatch(incoming):
        return incoming
    return new_request_id()


def request_id() -> str | None:
    """The id of the request or job running now, if any (what an enqueued job inherits)."""
    value = current_request_id.get()
    return None if value == _NONE else value


@contextmanager
def carrying(value: str | None) -> Iterator[str]:
    """Run a job under the id it was enqueued with (a new one if it came without)."""
    token = current_request_id.set(accepted_request_id(value))
    try:
        yield current_request_id.get()
    finally:
        current_request_id.reset(token)


def _stamp(record: logging.LogRecord) -> logging.LogRecord:
    """Give the record the current request id, and redact review-link tokens from its
    text (message and arguments folded together: the token may sit in either)."""
    if not hasattr(record, "request_id"):
        record.request_id = current_request_id.get()
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: logging reports it itself, later
        return record
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    return record


class RequestIdFilter(logging.Filter):
    """For handlers set up from a dictionary (Gunicorn's): the same stamp."""

    def filter(self, record: logging.LogRecord) -> bool:
        _stamp(record)
        return True


def install_record_factory() -> None:
    """Every record of the process is stamped when it is made, so every handler (ours,
    Gunicorn's, RQ's, a test runner's) sees the id and never the token."""
    current = logging.getLogRecordFactory()
    if getattr(current, "_signoff", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _stamp(current(*args, **kwargs))

    factory._signoff = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class _RedactsTracebacks:
    """A traceback repeats what the code held (an exception's text may quote a review
    link): redacted like the message, when written."""

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))  # type: ignore[misc]

    def formatStack(self, stack_info: str) -> str:
        return redact(super().formatStack(stack_info))  # type: ignore[misc]


class TextFormatter(_RedactsTracebacks, logging.Formatter):
    pass


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    class JsonLines(_RedactsTracebacks, JsonFormatter):
        pass

    return JsonLines("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                     rename_fields={"levelname": "level", "name": "logger"})


def text_formatter() -> logging.Formatter:
    return TextFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")


def formatter_for(log_format: str) -> logging.Formatter:
    return json_formatter() if log_format == "json" else text_formatter()


HANDLER_MARK = "_signoff_handler"


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """One stderr handler on the root logger (once per process), with the id filter on it;
    Gunicorn's own loggers get theirs from gunicorn.conf.py."""
    install_record_factory()
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, HANDLER_MARK, False)]
    handler = ours[0] if ours else logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    if not ours:
        setattr(handler, HANDLER_MARK, True)
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)


def _begin(app: Flask) -> None:
    token = current_request_id.set(accepted_request_id(request.headers.get(HEADER)))
    request.environ["signoff.request_id_token"] = token


def _echo(response: Response) -> Response:
    """The id goes back to the caller, and the request is logged by its endpoint (never
    its path, where review-link tokens live) with what came of it."""
    response.headers[HEADER] = current_request_id.get()
    started = g.get("_signoff_started")  # portal/ops/metrics.py's timer
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
    request_log.info("%s %s %s", request.method, request.endpoint or "unmatched",
                     response.status_code,
                     extra={"endpoint": request.endpoint or "unmatched", "method": request.method,
                            "status": response.status_code, "duration_ms": elapsed_ms})
    return response


def _end(_exc: BaseException | None) -> None:
    token = request.environ.pop("signoff.request_id_token", None)
    if token is not None:
        # Set in another context (a copied one)? Then there is nothing to undo here.
        with contextlib.suppress(ValueError):
            current_request_id.reset(token)


def install(app: Flask) -> None:
    # First of the before-request hooks, so the intent hook and all others log with it.
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: _begin(app))
    app.after_request(_echo)
    app.teardown_request(_end)
    install_record_factory()
    if app.config.get("LOG_FORMAT") == "json" or not app.config.get("TESTING"):
        configure_logging(app.config.get("LOG_FORMAT", "text"))


def gunicorn_logconfig(log_format: str, access: bool = True) -> dict[str, Any]:
    """Gunicorn's error and access logs through the same formatter and filter (no access
    lines when `access` is off: the app's own request line is enough)."""
    formatter = ("portal.ops.logs.json_formatter" if log_format == "json"
                 else "portal.ops.logs.text_formatter")
    handler = {"class": "logging.StreamHandler", "formatter": "signoff",
               "filters": ["request_id"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "portal.ops.logs.RequestIdFilter"}},
        "formatters": {"signoff": {"()": formatter}},
        "handlers": {"error": {**handler, "stream": "ext://sys.stderr"},
                     "access": {**handler, "stream": "ext://sys.stdout"}},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error"], "propagate": False},
            "gunicorn.access": {"level": "INFO" if access else "CRITICAL",
                                "handlers": ["access"] if access else [], "propagate": False},
        },
        # The root logger (the app's own lines) is the app's: configure_logging.
        "root": {"level": "INFO", "handlers": []},
    }
