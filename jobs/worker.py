"""`rq worker -w jobs.worker.AppWorker`: builds the Flask app once, before forking.

RQ forks a work horse per job; without this each horse would build the app again. Mail
costs one fork per batch, not per message: one send job drains every due outbox row, up
to 100 over each SMTP connection (jobs/outbox.py). The fork is kept on purpose: a worker
killed mid-batch leaves its horse to finish and record the batch, a horse that dies
leaves only its claimed rows, sent by others once their lease runs out.
"""
from __future__ import annotations

from typing import Any

from rq.worker import Worker

from jobs import worker_app


class AppWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._warm_up()

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
