"""The embedded default's job runner (no REDIS_URL): one background thread per app and process.

Jobs handed over after a commit run here one at a time, in order, each in a fresh context
and app context (so with a database session of its own), while the request that asked for
them has already answered. The job functions are RQ's (jobs/*.py), called unchanged by
their dotted names. A job that fails is logged and left: its row stays pending, and the
relay (`flask jobs sweep`) hands it on again. At exit the process waits a while for the
jobs it was given; whatever is left stays pending in the database, the source of truth.
"""
from __future__ import annotations

import atexit
import contextvars
import logging
import os
import queue
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.utils import import_string

from portal.ops.logs import carrying

log = logging.getLogger(__name__)
EXTENSION = "signoff_background"
EXIT_GRACE = 30.0  # seconds a stopping process gives the jobs it already took


@dataclass(frozen=True)
class Job:
    func: str  # dotted name, as RQ takes it: "jobs.outbox.deliver_message"
    args: tuple[Any, ...]
    job_id: str
    request_id: str | None = None  # of the request that asked for it: its log lines carry it


_STOP = Job("", (), "")


class Runner:
    """A queue and the one thread that empties it, started on the first job."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.pid = os.getpid()
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._state = threading.Condition()
        self._queued: set[str] = set()  # ids not started yet: the same job is not queued twice
        self.coalesced: dict[str, str] = {}  # coalescing key -> the last job id queued under it
        self._unfinished = 0
        self._thread: threading.Thread | None = None

    def submit(self, job: Job) -> bool:
        """Queue the job unless one with its id is already waiting; True if queued."""
        with self._state:
            if job.job_id in self._queued:
                return False
            self._queued.add(job.job_id)
            self._unfinished += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True,
                                                 name=f"signoff-jobs-{id(self):x}")
                self._thread.start()
            self._jobs.put(job)
        return True

    def waiting(self, job_id: str) -> bool:
        with self._state:
            return job_id in self._queued

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Block until every job handed over so far (and any they queued) has run."""
        with self._state:
            return self._state.wait_for(lambda: self._unfinished == 0, timeout)

    def stop(self, timeout: float = EXIT_GRACE) -> bool:
        """Let the queued jobs finish (up to `timeout`), then end the thread; True if idle."""
        idle = self.wait_until_idle(timeout)
        with self._state:
            thread = self._thread
            if thread is not None:
                self._jobs.put(_STOP)
        if thread is not None and idle:
            thread.join(timeout)
        return idle

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            with self._state:
                if job is _STOP:
                    if self._unfinished:  # a job came in after the stop: keep going
                        continue
                    self._thread = None  # decided under the lock submit() takes
                    return
                self._queued.discard(job.job_id)
            try:
                # A fresh context: nothing of the thread that started us (read intent,
                # a request's contexts) leaks into the job.
                contextvars.Context().run(self._run, job)
            finally:
                with self._state:
                    self._unfinished -= 1
                    self._state.notify_all()

    def _run(self, job: Job) -> None:
        with carrying(job.request_id), self.app.app_context():
            try:
                import_string(job.func)(*job.args)
            except Exception:
                log.exception("background job %s failed; its row stays pending for the relay",
                              job.job_id)


_RUNNERS: weakref.WeakSet[Runner] = weakref.WeakSet()
_CREATE = threading.Lock()


def runner(app: Flask) -> Runner:
    """This app's runner in this process (a forked child gets its own: threads do not
    survive a fork)."""
    with _CREATE:
        found = app.extensions.get(EXTENSION)
        if found is None or found.pid != os.getpid():
            found = app.extensions[EXTENSION] = Runner(app)
            _RUNNERS.add(found)
        return found


def wait_until_idle(app: Flask, timeout: float | None = None) -> bool:
    """True once this app's jobs have all run (at once when it never had any)."""
    found = app.extensions.get(EXTENSION)
    return found is None or found.pid != os.getpid() or found.wait_until_idle(timeout)


def stop(app: Flask, timeout: float = EXIT_GRACE) -> bool:
    found = app.extensions.get(EXTENSION)
    return found is None or found.pid != os.getpid() or found.stop(timeout)


@atexit.register
def _stop_all() -> None:
    for found in list(_RUNNERS):
        if found.pid == os.getpid() and not found.stop(EXIT_GRACE):
            log.warning("background jobs still running at exit; their rows stay pending "
                        "for the relay")
