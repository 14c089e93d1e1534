"""Email delivery jobs."""
from __future__ import annotations

import time

from jobs import app_context

# A send job hands on to a fresh one after this long, well inside RQ's job timeout (180 s).
BUDGET_SECONDS = 60.0


def send_due() -> dict[str, int]:
    """Send every due pending outbox row, a batch at a time, each batch over one SMTP
    connection; then wake again when the earliest retry falls due (RQ's scheduler; the
    periodic relay too). Never raises for a message: each row keeps its own retries."""
    from portal.models import utcnow
    from portal.notifications import outbox
    from portal.notifications.queue import enqueue_unless_waiting

    with app_context():
        started = time.monotonic()
        total = {"sent": 0, "retrying": 0, "failed": 0}
        while True:
            batch = outbox.send_due()
            for name in total:
                total[name] += getattr(batch, name)
            if not batch.claimed:
                break
            if time.monotonic() - started > BUDGET_SECONDS:  # more to do: another job
                enqueue_unless_waiting(outbox.SEND_DUE_JOB, job_id=f"outbox-more-{time.time_ns()}",
                                       coalesce=outbox.WAKE)
                return total
        due = outbox.next_retry_at()
        if due is not None and due > utcnow():
            enqueue_unless_waiting(outbox.SEND_DUE_JOB, at=due,
                                   job_id=f"outbox-at-{int(due.timestamp())}")
        return total


def deliver_message(message_id: int) -> str | None:
    """Send one outbox row (skipped if already sent). Raises on failure so RQ retries.
    Jobs queued before batches (`outbox-<id>` ran this) still run."""
    from portal.notifications import outbox

    with app_context():
        status = outbox.deliver(message_id)
        return status.value if status else None


def relay() -> int:
    """Wake a send job if pending rows are due."""
    from portal.extensions import db
    from portal.notifications import outbox

    with app_context():
        count = outbox.relay()
        db.session.commit()  # the job goes to the queue at this commit
        return count
