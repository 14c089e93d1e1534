"""Prometheus metrics on /-/metrics (the portal's own /metrics page is the finance report).

Observations happen in many processes (gunicorn workers, rq work horses, rq cron), so with
PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py sets it for the web; `make stack` for all)
each process writes its samples to files there and a scrape aggregates every process of
that machine: each machine is scraped. Without it (tests, `make run`) the process's own
registry answers. What lives in the database or Redis (queue depth, the outbox) is read at
scrape time, so it is the same whichever process answers.

Who may read it: with METRICS_TOKEN set, a caller with `Authorization: Bearer <token>`;
without it, loopback callers only (the address after ProxyFix). Anyone else gets a 404.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
bp = Blueprint("ops_metrics", __name__)
PATH = "/-/metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# In multiprocess mode a process's samples go to files named by its identity. An RQ work
# horse lives for one job: named by its own pid, each would leave files behind (one a
# minute for the sweep alone) and every scrape would read them all. A horse writes its
# worker's files instead (AppWorker calls `one_identity_for_forks`): a worker's horses run
# one after another, never side by side. The identity still differs in each process, so a
# new horse re-reads the file (its values and where each is) before its first write,
# instead of trusting what it inherited from a parent that never saw the last horse's.
_identity: int | None = None


class _FilesOf:
    """Names the files of `owner`, but equals only the same owner in the same process."""

    def __init__(self, owner: int, process: int) -> None:
        self.owner, self.process = owner, process

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _FilesOf) and (other.owner, other.process) == (
            self.owner, self.process)

    def __hash__(self) -> int:
        return hash((self.owner, self.process))

    def __format__(self, spec: str) -> str:
        return format(self.owner, spec)


def _files_of_this_process() -> _FilesOf:
    return _FilesOf(_identity or os.getpid(), os.getpid())


def one_identity_for_forks() -> None:
    """From now on the processes this one forks write its sample files."""
    global _identity
    _identity = os.getpid()


if os.environ.get(MULTIPROC_ENV):
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue(process_identifier=_files_of_this_process)

# registry=None: the families are not put in prometheus_client's process-wide registry
# (a second import of this module, as in a reload, would clash there); each scrape builds
# its own registry from them, or from the multiprocess files.
REQUEST_SECONDS = Histogram(
    "signoff_http_request_duration_seconds",
    "Time to answer a request, by Flask endpoint (never the path: tokens live in paths).",
    ["endpoint", "method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=None,
)
SWEEP_SECONDS = Histogram(
    "signoff_reminder_sweep_duration_seconds",
    "Time the every-minute sweep spent on reminders, escalations and expiries.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120), registry=None,
)
CERTIFICATE_SECONDS = Histogram(
    "signoff_certificate_issue_duration_seconds",
    "Time to render, seal and store one approval certificate.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=None,
)
WEBHOOK_ATTEMPT_FAILURES = Counter(
    "signoff_webhook_attempt_failures_total",
    "Webhook POSTs that failed (refused, timed out, or not 2xx), each attempt counted.",
    registry=None,
)
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _start_timer() -> None:
    g._signoff_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("_signoff_started", None)
    if started is not None:
        method = request.method if request.method in _METHODS else "other"
        REQUEST_SECONDS.labels(endpoint=request.endpoint or "unmatched", method=method,
                               status=f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started)
    return response


class ScrapeTimeCollector(Collector):
    """Queue depth from Redis and the outbox from the database, read when scraped."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._outbox()
        if self.app.config.get("REDIS_URL"):
            yield from self._queues()

    def _outbox(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy.exc import SQLAlchemyError

        from portal.database import abandon_transaction
        from portal.ops.backlog import pending_and_failed

        family = GaugeMetricFamily(
            "signoff_outbox_messages",
            "Emails and webhook deliveries not sent yet (pending) or given up on (failed).",
            labels=["kind", "status"])
        up = GaugeMetricFamily("signoff_outbox_database_up",
                               "1 if the database answered this scrape's outbox question.")
        try:
            counts = pending_and_failed()
        except SQLAlchemyError as exc:  # the rest of the scrape still answers
            log.warning("metrics: the database did not answer: %s", type(exc).__name__)
            abandon_transaction()
            counts = {}
        for (kind, status), count in counts.items():
            family.add_metric([kind, status], count)
        up.add_metric([], 1 if counts else 0)
        yield family
        yield up

    def _queues(self) -> Iterator[GaugeMetricFamily]:
        from redis.exceptions import RedisError
        from rq import Queue

        from portal.notifications.queue import redis_connection

        family = GaugeMetricFamily("signoff_queue_jobs",
                                   "RQ jobs by queue and state, read from Redis at scrape.",
                                   labels=["queue", "state"])
        up = GaugeMetricFamily("signoff_queue_redis_up",
                               "1 if Redis answered this scrape's queue questions.")
        connection = redis_connection(self.app.config["REDIS_URL"])
        try:
            for queue in Queue.all(connection=connection):
                family.add_metric([queue.name, "queued"], queue.count)
                family.add_metric([queue.name, "started"], queue.started_job_registry.count)
                family.add_metric([queue.name, "scheduled"],
                                  queue.scheduled_job_registry.count)
                family.add_metric([queue.name, "failed"], queue.failed_job_registry.count)
            up.add_metric([], 1)
        except RedisError as exc:
            log.warning("metrics: Redis did not answer: %s", type(exc).__name__)
            up.add_metric([], 0)
        finally:
            connection.close()
        yield family
        yield up


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


# Headers a proxy adds: a loopback socket carrying one is a proxy on this machine relaying
# someone else (with TRUSTED_PROXY_HOPS set, ProxyFix has already put that caller's address
# in remote_addr and removed nothing, so the rule below still sees the real caller).
PROXIED = ("X-Forwarded-For", "Forwarded", "X-Real-Ip")


def allowed(token: str, authorization: str, remote_addr: str | None,
            proxied: bool = False) -> bool:
    """The access rule: the token when one is set (compared in constant time), else
    loopback only, and not through a proxy that did not say who it relays (hops 0)."""
    if token:
        scheme, _, given = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode())
    if proxied:
        return False
    return _loopback(remote_addr)


def scrape_registry(app: Flask) -> CollectorRegistry:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        for collector in (REQUEST_SECONDS, SWEEP_SECONDS, CERTIFICATE_SECONDS,
                          WEBHOOK_ATTEMPT_FAILURES):
            registry.register(collector)
    registry.register(ScrapeTimeCollector(app))
    return registry


@bp.get(PATH)
def scrape() -> Any:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    relayed = not app.config.get("TRUSTED_PROXY_HOPS") and any(
        name in request.headers for name in PROXIED)
    if not allowed(app.config.get("METRICS_TOKEN", ""),
                   request.headers.get("Authorization", ""), request.remote_addr, relayed):
        abort(404)
    body = generate_latest(scrape_registry(app))
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST,
                                   "Cache-Control": "no-store"})


def install(app: Flask) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    app.after_request(_observe)


__all__ = ["CERTIFICATE_SECONDS", "PATH", "SWEEP_SECONDS", "WEBHOOK_ATTEMPT_FAILURES",
           "install"]
