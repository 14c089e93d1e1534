"""/healthz (the process answers) and /readyz (what it needs is reachable), for a load
balancer or an orchestrator. Neither reads a session, a login or a rate limit, and neither
says more than ok or failed: no names, addresses, paths or error texts (those go to the log).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, TimeoutError, wait
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


def _storage(app: Flask) -> Check:
    from portal.files.storage import file_store

    return file_store().check_reachable  # raises StorageUnreachable


def checks(app: Flask) -> dict[str, Check]:
    """What readiness means here, built in the request (so in the app context)."""
    from portal.extensions import db

    found: dict[str, Check] = {"database": _database(db.engine)}
    if app.config.get("REDIS_URL"):
        found["redis"] = _redis(app.config["REDIS_URL"])
    found["storage"] = _storage(app)
    return found


# One small pool per process, and no second copy of a check while the last still hangs:
# probes every few seconds from each load balancer (and anyone else: the page is public)
# must not pile up threads or multiply calls to the database, Redis or the bucket.
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")
_running: dict[str, Future[None]] = {}
_lock = threading.Lock()


def _submit(name: str, check: Check) -> Future[None]:
    with _lock:
        last = _running.get(name)
        if last is not None and not last.done():
            return last  # still hanging: it answers for this probe too
        _running[name] = future = _pool.submit(check)
        return future


def run_checks(found: dict[str, Check], deadline: float = CHECK_SECONDS) -> dict[str, str]:
    """Run the checks side by side; one that raises or outlasts the deadline failed."""
    futures = {name: _submit(name, check) for name, check in found.items()}
    wait(futures.values(), timeout=deadline)
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
