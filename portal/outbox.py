"""Hand committed outbox rows to the queue, and deliver them from there.

The database is the source of truth: a row is written in the same transaction as the
change that caused it, handed on only after that transaction commits, and marked sent
only after the transport accepted it. Anything still pending is picked up by the relay.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import inspect, select

from portal import audit, mailer
from portal.directory import require_staff
from portal.errors import IllegalTransition
from portal.extensions import db
from portal.mail import NEW_MESSAGES_KEY
from portal.models import OutboxMessage, OutboxStatus, User, utcnow
from portal.queue import AFTER_COMMIT_KEY, enqueue_unless_waiting
from portal.rows import due_pending_ids, lock_row

DELIVER_JOB = "jobs.mail.deliver_message"


def commit() -> None:
    """Commit the session, then hand what this transaction asked for to the queue:
    its new outbox messages, and jobs such as issuing a certificate."""
    new = db.session.info.pop(NEW_MESSAGES_KEY, [])
    jobs = db.session.info.pop(AFTER_COMMIT_KEY, [])
    db.session.commit()
    for message in new:
        state = inspect(message)
        if state.persistent:  # rows rolled back since are transient again
            dispatch(state.identity[0])
    for func, args, job_id in jobs:
        enqueue_unless_waiting(func, *args, job_id=job_id)


def retry_intervals() -> list[int]:
    return [int(s) for s in str(current_app.config["MAIL_RETRY_INTERVALS"]).split(",") if s]


def dispatch(message_id: int) -> bool:
    return enqueue_unless_waiting(DELIVER_JOB, message_id, job_id=f"outbox-{message_id}",
                        retries=retry_intervals())


def deliver(message_id: int, now: datetime | None = None) -> OutboxStatus | None:
    """Send one pending message. Raises DeliveryFailed after recording a failed attempt,
    so the queue retries it; the last attempt marks the row failed instead."""
    # Locked, so two workers never send it at once.
    message = lock_row(OutboxMessage, message_id, skip_locked=True)
    if message is None or message.status != OutboxStatus.PENDING:
        db.session.rollback()
        return message.status if message else None
    config = current_app.config
    message.attempts += 1
    try:
        message.transport = mailer.send(message, config)
    except mailer.DeliveryFailed as exc:
        message.last_error = str(exc)[:2000]
        intervals = retry_intervals() or [60]
        if message.attempts >= config["MAIL_MAX_ATTEMPTS"]:
            message.status = OutboxStatus.FAILED
            db.session.commit()
            return message.status
        delay = intervals[min(message.attempts - 1, len(intervals) - 1)]
        message.next_attempt_at = (now or utcnow()) + timedelta(seconds=delay)
        db.session.commit()
        raise
    message.status = OutboxStatus.SENT
    message.sent_at = now or utcnow()
    message.last_error = ""
    db.session.commit()
    return message.status


def relay(now: datetime | None = None, limit: int = 500) -> int:
    """Queue every pending message that is due; returns how many were handed on."""
    due = due_pending_ids(OutboxMessage, now or utcnow(), limit)
    return sum(dispatch(message_id) for message_id in due)


def retry_failed(actor: User, message: OutboxMessage) -> None:
    """Staff pressed "Retry" on a failed message."""
    require_staff(actor)
    if message.status != OutboxStatus.FAILED:
        raise IllegalTransition(f"This message is {message.status.label}, not failed.")
    message.status = OutboxStatus.PENDING
    message.attempts = 0
    message.next_attempt_at = utcnow()
    audit.record(actor, "email.retried", message, to=message.to_addr)
    db.session.info.setdefault(NEW_MESSAGES_KEY, []).append(message)


def problems() -> list[OutboxMessage]:
    return list(db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
        .order_by(OutboxMessage.id.desc())
    ))
