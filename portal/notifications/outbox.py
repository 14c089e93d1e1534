"""Deliver outbox emails: one attempt per job, retried with backoff, failures shown to staff.

The database is the source of truth: a row is written in the same transaction as the
change that caused it, handed to the queue after that transaction commits, and marked
sent only after the transport accepted it. Anything still pending is picked up by the
relay. `deliver` is a job's whole unit of work, so it commits its own transaction.
"""
from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import select

from portal import audit
from portal.database import due_pending_ids
from portal.errors import IllegalTransition
from portal.extensions import db
from portal.models import OutboxMessage, OutboxStatus, User, utcnow
from portal.notifications import smtp
from portal.notifications.delivery import (
    Outcome,
    RetryPolicy,
    Send,
    Undeliverable,
    attempt,
)
from portal.notifications.queue import after_commit, relay_after_commit
from portal.people import agency
from portal.permissions import require_staff

DELIVER_JOB = "jobs.outbox.deliver_message"


def retry_policy() -> RetryPolicy:
    config = current_app.config
    return RetryPolicy.from_setting(config["MAIL_RETRY_INTERVALS"], config["MAIL_MAX_ATTEMPTS"])


def send_after_commit(message_id: int) -> None:
    after_commit(DELIVER_JOB, message_id, job_id=f"outbox-{message_id}",
                 retries=list(retry_policy().intervals))


# Emails carrying a one-time code (its first word in the subject): once sent, the code is
# blanked in the stored copy, so the outbox never keeps a usable code.
ONE_TIME_KEY_PREFIX = "decision-code:"
BLANKED = "••••••"


def _blanked_once_sent(message: OutboxMessage) -> dict[str, str]:
    code = message.subject.split(" ", 1)[0]
    if not message.idempotency_key.startswith(ONE_TIME_KEY_PREFIX) or not code.isdigit():
        return {}
    return {name: getattr(message, name).replace(code, BLANKED)
            for name in ("subject", "body_text", "body_html")}


def deliver(message_id: int, now: datetime | None = None) -> OutboxStatus | None:
    """Send one pending message. Raises DeliveryFailed after recording a failed attempt,
    so the queue retries it; the last attempt marks the row failed instead."""
    now = now or utcnow()
    config = current_app.config

    def prepare(message: OutboxMessage) -> Send:
        try:
            # From: the agency's name at the deployment's address (people/agency.py).
            sender = agency.from_header(agency.current(), config["MAIL_DEFAULT_SENDER"])
            email = smtp.build_email(message, sender)
        except (ValueError, TypeError) as exc:  # the email module refused to build it
            raise Undeliverable(f"{type(exc).__name__}: {exc}") from exc
        blanked = _blanked_once_sent(message)

        def send() -> Outcome:  # outside any transaction
            try:
                transport = smtp.send(email, config)
            except smtp.DeliveryFailed as exc:
                return Outcome(str(exc))
            except (ValueError, TypeError) as exc:  # a header that cannot be written out
                raise Undeliverable(f"{type(exc).__name__}: {exc}") from exc
            return Outcome(fields={"transport": transport, "sent_at": now, **blanked})
        return send

    result = attempt(OutboxMessage, message_id, prepare, retry_policy(), now)
    if result.retrying:
        raise smtp.DeliveryFailed(result.error)
    return result.status


def relay(now: datetime | None = None, limit: int = 500) -> int:
    """Hand every due pending message to the queue at the caller's commit; returns how many
    (those whose job is already waiting are left to it)."""
    due = due_pending_ids(OutboxMessage, now or utcnow(), limit)
    return relay_after_commit(DELIVER_JOB, due, "outbox", list(retry_policy().intervals))


def retry_failed(actor: User, message: OutboxMessage) -> None:
    """Staff pressed "Retry" on a failed message."""
    require_staff(actor)
    if message.status != OutboxStatus.FAILED:
        raise IllegalTransition(f"This message is {message.status.label}, not failed.")
    RetryPolicy.restart(message, utcnow())
    audit.record(actor, "email.retried", message, to=message.to_addr)
    send_after_commit(message.id)


def problems() -> list[OutboxMessage]:
    return list(db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
        .order_by(OutboxMessage.id.desc())
    ))
