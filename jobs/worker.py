"""`rq worker -w jobs.worker.AppWorker`: builds the Flask app once, before forking.

RQ forks a work horse per job; without this each horse would build the app again.
"""
from __future__ import annotations

from typing import Any

from rq.worker import Worker

from jobs import worker_app


class AppWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        worker_app()
