"""RQ job functions: they take ids, load rows, call portal code, and commit.

A worker process builds the app once, on its first job, and runs each job in a fresh
app context. In the embedded default (no REDIS_URL) the in-process background runner
(portal/notifications/background.py) gives each job a fresh app context of the app that
asked for it, so a session of its own; called by hand (the CLI, tests) a job runs in the
caller's context.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, has_app_context

_worker_app: Flask | None = None


def worker_app() -> Flask:
    global _worker_app
    if _worker_app is None:
        from portal import create_app

        _worker_app = create_app()
    return _worker_app


@contextmanager
def app_context() -> Iterator[None]:
    if has_app_context():
        yield
        return
    from portal.extensions import db

    with worker_app().app_context():
        try:
            yield
        finally:
            db.session.remove()
