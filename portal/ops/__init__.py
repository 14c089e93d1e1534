"""The production shape: health checks, metrics and structured logs (see the README)."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Wire health, metrics and logs into the app."""
    from portal.extensions import csrf, limiter
    from portal.ops import health, logs, metrics, proxy

    proxy.install(app)
    metrics.install(app)
    logs.install(app)  # after metrics: its hook goes first, so the timer runs under the id
    for blueprint in (health.bp, metrics.bp):
        csrf.exempt(blueprint)
        limiter.exempt(blueprint)
        app.register_blueprint(blueprint)
