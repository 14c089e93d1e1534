"""Email delivery jobs."""
from __future__ import annotations

from jobs import app_context


def deliver_message(message_id: int) -> str | None:
    """Send one outbox row (skipped if already sent). Raises on failure so RQ retries."""
    from portal.notifications import outbox

    with app_context():
        status = outbox.deliver(message_id)
        return status.value if status else None


def relay() -> int:
    """Hand every pending, due outbox row to the queue."""
    from portal.extensions import db
    from portal.notifications import outbox

    with app_context():
        count = outbox.relay()
        db.session.commit()  # the rows go to the queue at this commit
        return count
