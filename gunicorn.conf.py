"""Gunicorn reads this from the working directory: `gunicorn wsgi:app` (or `-c gunicorn.conf.py`).

Every value comes from the environment with a default for one machine; options on the
command line (`--bind`, `-w`, `--threads`…) override this file, as Gunicorn always does.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from typing import Any


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


_cpus = multiprocessing.cpu_count()

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Pages mostly wait on the database, so a few threads per process; processes for the CPUs.
workers = _int("WEB_CONCURRENCY", 2 * _cpus + 1)
threads = _int("GUNICORN_THREADS", 4)
worker_class = "gthread"
timeout = _int("GUNICORN_TIMEOUT", 60)  # a worker silent this long is killed and replaced
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)  # SIGTERM: finish requests in flight
keepalive = _int("GUNICORN_KEEPALIVE", 5)  # seconds; the proxy's idle timeout must be longer
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)  # >0 recycles workers (with jitter)
max_requests_jitter = max_requests // 10
# Gunicorn's control socket lives at one path per user (~/.gunicorn): two servers on one
# machine would share it. The portal needs none (signals do reloads and stops).
control_socket_disable = os.environ.get("GUNICORN_CONTROL_SOCKET", "") == ""
if not control_socket_disable:
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
# Proxy headers are the app's business alone (TRUSTED_PROXY_HOPS, werkzeug's ProxyFix):
# Gunicorn would otherwise believe X-Forwarded-Proto from any loopback caller.
secure_scheme_headers: dict[str, str] = {}
# The request id (X-Request-Id, echoed by the app) and the worker's pid on each line.
access_log_format = ('%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s" '
                     'request_id=%({x-request-id}o)s worker=%(p)s')
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None  # empty: none
errorlog = "-"
# Review-link tokens are credentials: the access log never shows them.
logger_class = "portal.access_log.GunicornLogger"

if os.environ.get("LOG_FORMAT", "text") == "json":
    from portal.ops.logs import gunicorn_logconfig

    logconfig_dict = gunicorn_logconfig("json", access=accesslog is not None)

# Prometheus' multiprocess mode: every worker writes its samples under this folder and
# a scrape of /-/metrics on any worker adds them up. It must be set before the app (and
# prometheus_client) is imported. Set it yourself to share it with the machine's rq
# workers and scheduler (empty it before they all start); else each server gets its own.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="signoff-metrics-")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """A worker that ended leaves its counters, but its live gauges must go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
