"""The job queue: Redis with real workers, or (no REDIS_URL) the in-process background
runner (portal/notifications/background.py); either way no request waits for a job.

Redis is only transport. Jobs are enqueued after the transaction that asked for them
commits (a session hook), under deterministic ids. Enqueueing never fails a request:
when Redis is down the outbox row stays pending and the periodic relay hands it on later.
"""
from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Any

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, scoped_session

from portal.notifications import background
from portal.ops.logs import request_id

log = logging.getLogger(__name__)
QUEUE_NAME = "signoff"


def redis_connection(url: str) -> Redis:
    # Short timeouts: a dead Redis must never hang a page.
    return Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)


def _embedded() -> background.Runner | None:
    """The in-process runner when there is no Redis to hand jobs to."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return None if app.config["REDIS_URL"] else background.runner(app)


def job_queue() -> Queue:
    """The RQ queue on REDIS_URL."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    queue = app.extensions.get("signoff_queue")
    if queue is None:
        queue = Queue(QUEUE_NAME, connection=redis_connection(app.config["REDIS_URL"]))
        app.extensions["signoff_queue"] = queue
    return queue


WAITING = {"queued", "scheduled", "deferred"}


def _waiting(queue: Queue, job_id: str) -> bool:
    """Will this job run without our help? A worker killed right after popping a job
    leaves it marked "queued" but in no queue, so ask the queue itself (LPOS)."""
    existing = queue.fetch_job(job_id)
    if existing is None:
        return False
    status = existing.get_status(refresh=False)
    if status == "queued":
        return queue.get_job_position(job_id) is not None
    return status in WAITING


def _unshared_id(queue: Queue, job_id: str) -> str:
    """The id to enqueue under. A job still running under this id keeps it to itself: two
    jobs sharing one id share one Redis hash, and whichever ends first deletes it under the
    other (RQ's clean-up then fails with InvalidJobOperation). The job's own claims make two
    runs side by side harmless."""
    existing = queue.fetch_job(job_id)
    if existing is not None and existing.get_status(refresh=False) == "started":
        return f"{job_id}_{secrets.token_hex(4)}"
    return job_id


def waiting(job_id: str) -> bool:
    """Is this job already in the queue, bound to run? (False when Redis is away.)"""
    runner = _embedded()
    if runner is not None:
        return runner.waiting(job_id)
    queue = job_queue()
    try:
        return _waiting(queue, job_id)
    except RedisError:
        return False


def _coalesce_key(name: str) -> str:
    return f"signoff:waking:{name}"


def waiting_for(coalesce: str) -> bool:
    """Is the last job enqueued under this coalescing key still waiting to run? (False
    when Redis is away.) Once it has started, a new row needs a new job: the running one
    may have looked already."""
    runner = _embedded()
    if runner is not None:
        last = runner.coalesced.get(coalesce)
        return last is not None and runner.waiting(last)
    queue = job_queue()
    try:
        last = queue.connection.get(_coalesce_key(coalesce))
        return last is not None and _waiting(queue, last.decode())
    except RedisError:
        return False


def enqueue_unless_waiting(func: str, *args: Any, job_id: str,
                           retries: list[int] | None = None, coalesce: str | None = None,
                           at: datetime | None = None) -> bool:
    """Enqueue under a deterministic id unless that job is already waiting to run.

    A job that started and died with its worker is enqueued again: the claim and status
    check in the job itself make a second run harmless. False when Redis is down.
    `coalesce`: one waiting job of that name does for all (the send job drains every due
    row), so none is added while the last one enqueued under it still waits.
    `at`: run it then (RQ's scheduler); in-process there are no timed jobs or retries
    (`retries`): the relay hands a failed row on.
    """
    runner = _embedded()
    if runner is not None:
        if at is not None or (coalesce and waiting_for(coalesce)):
            return False
        queued = runner.submit(background.Job(func, args, job_id, request_id()))
        if coalesce and queued:
            runner.coalesced[coalesce] = job_id
        return queued
    queue = job_queue()
    options: dict[str, Any] = {"job_id": job_id, "result_ttl": 0, "failure_ttl": 7 * 24 * 3600}
    if request_id() is not None:  # the worker logs the job under the id of who asked for it
        options["meta"] = {"request_id": request_id()}
    if retries:
        options["retry"] = Retry(max=len(retries), interval=retries)
    try:
        if _waiting(queue, job_id) or (coalesce and waiting_for(coalesce)):
            return False
        job_id = options["job_id"] = _unshared_id(queue, job_id)
        if at is not None:
            queue.enqueue_at(at, func, *args, **options)
        else:  # one wake-up does for all, so it may go first: mail waits on no render
            queue.enqueue(func, *args, at_front=bool(coalesce), **options)
        if coalesce:
            queue.connection.set(_coalesce_key(coalesce), job_id)
    except RedisError as exc:
        log.warning("Redis unavailable; %s stays pending for the relay: %s", job_id, exc)
        return False
    return True


AFTER_COMMIT_KEY = "jobs_after_commit"


def relay_after_commit(func: str, ids: list[int], job_prefix: str,
                       retries: list[int] | None = None) -> int:
    """The relay's half: queue the jobs of these pending rows at the caller's commit,
    skipping those already waiting; returns how many will be handed on."""
    handed = [i for i in ids if not waiting(f"{job_prefix}-{i}")]
    for ident in handed:
        after_commit(func, ident, job_id=f"{job_prefix}-{ident}", retries=retries)
    return len(handed)


def after_commit(func: str, *args: Any, job_id: str, retries: list[int] | None = None,
                 coalesce: str | None = None) -> None:
    """Enqueue a job once the current transaction has committed; dropped if it rolls back.

    Callers never dispatch by hand: the session hook below does it for every commit, so
    a plain db.session.commit() in a view, a job or the CLI sends what it wrote.
    """
    from portal.extensions import db

    db.session.info.setdefault(AFTER_COMMIT_KEY, []).append(
        (func, args, job_id, retries, coalesce))


def _dispatch(session: Session) -> None:
    if session.in_nested_transaction():  # a SAVEPOINT released, not the commit
        return
    jobs = session.info.pop(AFTER_COMMIT_KEY, [])
    if not jobs:
        return
    woken: set[str] = set()
    for func, args, job_id, retries, coalesce in jobs:
        if coalesce in woken:  # one wake-up per commit does for all its rows
            continue
        if coalesce:
            woken.add(coalesce)
        enqueue_unless_waiting(func, *args, job_id=job_id, retries=retries, coalesce=coalesce)


def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction ended without a commit
        session.info.pop(AFTER_COMMIT_KEY, None)


def install_dispatch(session: scoped_session) -> None:
    """Hook the app's session (not SQLAlchemy's Session class): jobs go out after commit."""
    if not event.contains(session, "after_commit", _dispatch):
        event.listen(session, "after_commit", _dispatch)
        event.listen(session, "after_transaction_end", _forget)
