"""`rq worker -w jobs.worker.AppWorker`: builds the Flask app once, before forking.

RQ forks a work horse per job; without this each horse would build the app again. Mail
costs one fork per batch, not per message: one send job drains every due outbox row, up
to 100 over each SMTP connection (jobs/outbox.py). The fork is kept on purpose: a worker
killed mid-batch leaves its horse to finish and record the batch, a horse that dies
leaves only its claimed rows, sent by others once their lease runs out.
"""
from __future__ import annotations

import logging
from typing import Any

from rq.job import Job
from rq.queue import Queue
from rq.worker import Worker

from jobs import worker_app
from portal.ops.logs import carrying


class AppWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from portal.ops.metrics import one_identity_for_forks

        super().__init__(*args, **kwargs)
        one_identity_for_forks()  # the horses' metrics go to this worker's files
        self._warm_up()
        self._log_like_the_app()

    def execute_job(self, job: Job, queue: Queue) -> Any:
        """Run the job under the request id it was enqueued with (its meta): the worker's
        lines about it, and the work horse forked for it, log with that id."""
        with carrying(job.meta.get("request_id")):
            return super().execute_job(job, queue)

    @staticmethod
    def _log_like_the_app() -> None:
        """RQ gave its logger handlers of its own; the app's (JSON or text, with the
        request id) on the root logger does for all, so lines are neither plain nor twice."""
        from portal.ops.logs import HANDLER_MARK

        root = logging.getLogger()
        if any(getattr(h, HANDLER_MARK, False) for h in root.handlers):
            rq_logger = logging.getLogger("rq.worker")
            for handler in list(rq_logger.handlers):
                rq_logger.removeHandler(handler)
            rq_logger.propagate = True

    @staticmethod
    def _warm_up() -> None:
        """Configure the mappers and initialise the driver in the parent, so each forked
        work horse starts warm; then close the connections, which must not cross a fork."""
        from sqlalchemy import text
        from sqlalchemy.orm import configure_mappers

        from portal.certificates.issue import warm_up as warm_certificates
        from portal.extensions import db

        app = worker_app()
        with app.app_context():
            configure_mappers()
            warm_certificates()  # the seal's key, fonts and stylesheet, inherited by each fork
            with db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            db.engine.dispose()
