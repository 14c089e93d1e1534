"""/healthz (the process answers) and /readyz (what it needs is reachable), for a load
balancer or an orchestrator. Neither reads a session, a login or a rate limit, and neither
says more than ok or failed: no names, addresses, paths or error texts (those go to the log).
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, TimeoutError, wait
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import Engine, text

log = logging.getLogger(__name__)
bp = Blueprint("ops_health", __name__)
CHECK_SECONDS = 2.0  # each check's own timeouts are shorter; this bounds the whole answer
Check = Callable[[], None]


def _database(engine: Engine) -> Check:
    def check() -> None:
        from portal.database import declare_reads_only

        # Read-only, so on SQLite it begins deferred and never waits behind a writer's lock.
        declare_reads_only(True)  # the check's own thread, so its own context
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            connection.rollback()
    return check


def _redis(url: str) -> Check:
    def check() -> None:
        from portal.notifications.queue import redis_connection

        connection = redis_connection(url)
        try:
            connection.ping()
        finally:
            connection.close()
    return check


def _folder_writable(root: Path) -> None:
    """The local store's test: a file can be created and removed there."""
    root.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=root, prefix=".readyz-")
    os.close(fd)
    os.unlink(name)


def _storage(app: Flask) -> Check:
    from portal.files.storage import file_store

    store = file_store()
    reachable = getattr(store, "check_reachable", None)
    if callable(reachable):  # the store knows best (a folder, or a bucket)
        return reachable
    return lambda: _folder_writable(Path(app.config["FILE_STORE"]))


def checks(app: Flask) -> dict[str, Check]:
    """What readiness means here, built in the request (so in the app context)."""
    from portal.extensions import db

    found: dict[str, Check] = {"database": _database(db.engine)}
    if app.config.get("REDIS_URL"):
        found["redis"] = _redis(app.config["REDIS_URL"])
    found["storage"] = _storage(app)
    return found


def run_checks(found: dict[str, Check], deadline: float = CHECK_SECONDS) -> dict[str, str]:
    """Run the checks side by side; one that raises or outlasts the deadline failed."""
    pool = ThreadPoolExecutor(max_workers=len(found), thread_name_prefix="readyz")
    futures = {name: pool.submit(check) for name, check in found.items()}
    wait(futures.values(), timeout=deadline)
    pool.shutdown(wait=False)  # a hung check finishes (or times out) on its own
    results: dict[str, str] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=0)
            results[name] = "ok"
        except TimeoutError:
            log.warning("readiness check %s did not answer within %.1f s", name, deadline)
            results[name] = "failed"
        except Exception as exc:  # any failure is a "not ready", never a 500
            log.warning("readiness check %s failed: %s", name, type(exc).__name__)
            results[name] = "failed"
    return results


def _answer(body: dict[str, Any], status: int) -> Any:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz() -> Any:
    return _answer({"status": "ok"}, 200)


@bp.get("/readyz")
def readyz() -> Any:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    results = run_checks(checks(app))
    ready = all(value == "ok" for value in results.values())
    return _answer({"status": "ok" if ready else "failed", "checks": results},
                   200 if ready else 503)
