"""Deliver outbox emails in batches over one SMTP connection, each message retried with
backoff on its own, failures shown to staff.

The database is the source of truth: a row is written in the same transaction as the
change that caused it, handed to the queue after that transaction commits, and marked
sent only after the transport accepted it. Anything still pending is picked up by the
relay. `deliver` is a job's whole unit of work, so it commits its own transaction.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select

from portal import audit
from portal.database import due_pending_ids
from portal.errors import IllegalTransition
from portal.extensions import db
from portal.models import OutboxMessage, OutboxStatus, User, utcnow
from portal.notifications import smtp
from portal.notifications.delivery import (
    Attempted,
    Outcome,
    RetryPolicy,
    Undeliverable,
    attempt_many,
)
from portal.notifications.queue import after_commit, waiting_for
from portal.people import agency
from portal.permissions import require_staff

DELIVER_JOB = "jobs.outbox.deliver_message"  # one row (jobs queued before batches)
SEND_DUE_JOB = "jobs.outbox.send_due"
BATCH = 100  # messages claimed at once and sent over one SMTP connection
WAKE = "outbox"  # the coalescing key of the send job: one waiting job sends them all


def retry_policy() -> RetryPolicy:
    config = current_app.config
    return RetryPolicy.from_setting(config["MAIL_RETRY_INTERVALS"], config["MAIL_MAX_ATTEMPTS"])


def send_after_commit(message_id: int) -> None:
    """Wake a send job at the caller's commit, unless one is already waiting: it will send
    this row with whatever else is due (the job id names the row that woke it)."""
    after_commit(SEND_DUE_JOB, job_id=f"outbox-{message_id}", coalesce=WAKE)


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


@dataclass(frozen=True)
class Batch:
    claimed: int  # rows this batch tried (0: nothing was due and free)
    sent: int
    retrying: int
    failed: int


def _sender(config: Mapping[str, Any]) -> str:
    # From: the agency's name at the deployment's address (people/agency.py).
    return agency.from_header(agency.current(), config["MAIL_DEFAULT_SENDER"])


def _attempt(ids: list[int], now: datetime) -> dict[int, Attempted]:
    """One attempt at each of these rows: rendered (once) and built inside the claim, sent
    over one SMTP connection, each outcome recorded as soon as it is known."""
    # Here, not at the top: deferred renders with compose, which queues through us.
    from portal.notifications.deferred import ensure_rendered

    config = current_app.config
    sender: list[str] = []  # looked up once per batch, inside the claim

    def prepare(message: OutboxMessage) -> Prepared:
        ensure_rendered(message)  # a row queued unrendered gets its text now, once
        try:
            sender[:] = sender or [_sender(config)]
            email = smtp.build_email(message, sender[0])
        except (ValueError, TypeError) as exc:  # the email module refused to build it
            raise Undeliverable(f"{type(exc).__name__}: {exc}") from exc
        return Prepared(email, _blanked_once_sent(message))

    @contextmanager
    def transport() -> Iterator[Callable[[Prepared], Outcome]]:
        with smtp.connection(config) as send_one:
            def send(item: Prepared) -> Outcome:  # outside any transaction
                try:
                    name = send_one(item.email)
                except smtp.DeliveryFailed as exc:
                    return Outcome(str(exc))
                except (ValueError, TypeError) as exc:  # a header that cannot be written
                    raise Undeliverable(f"{type(exc).__name__}: {exc}") from exc
                return Outcome(fields={"transport": name, "sent_at": now, **item.blanked})
            yield send

    return attempt_many(OutboxMessage, ids, prepare, transport, retry_policy(), now)


@dataclass(frozen=True)
class Prepared:
    email: EmailMessage
    blanked: dict[str, str]


def deliver(message_id: int, now: datetime | None = None) -> OutboxStatus | None:
    """Send one pending message. Raises DeliveryFailed after recording a failed attempt,
    so the queue retries it; the last attempt marks the row failed instead."""
    result = _attempt([message_id], now or utcnow())[message_id]
    if result.retrying:
        raise smtp.DeliveryFailed(result.error)
    return result.status


def send_due(now: datetime | None = None, limit: int = BATCH) -> Batch:
    """One batch: up to `limit` due pending rows no other worker holds, over one SMTP
    connection. A job's unit of work (jobs/outbox.py repeats it while rows are due)."""
    now = now or utcnow()
    free = or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= utcnow())
    ids = due_pending_ids(OutboxMessage, now, limit, free)
    db.session.rollback()  # the claim starts its own transaction
    results = _attempt(ids, now).values() if ids else []
    tried = [r for r in results if r.attempted]
    return Batch(claimed=len(tried),
                 sent=sum(r.status == OutboxStatus.SENT and not r.error for r in tried),
                 retrying=sum(r.retrying for r in tried),
                 failed=sum(r.status == OutboxStatus.FAILED for r in tried))


def next_retry_at() -> datetime | None:
    """When the earliest pending row falls due (the send job wakes up then)."""
    return db.session.scalar(select(func.min(OutboxMessage.next_attempt_at)).where(
        OutboxMessage.status == OutboxStatus.PENDING))


def relay(now: datetime | None = None, limit: int = 500) -> int:
    """Make sure a send job will take the due pending rows: wake one at the caller's commit
    unless one is already waiting. Returns how many due rows it will take (a backlog an
    operator sees even while the job waits for a worker)."""
    due = due_pending_ids(OutboxMessage, now or utcnow(), limit)
    if due and not waiting_for(WAKE):
        after_commit(SEND_DUE_JOB, job_id=f"outbox-{due[0]}", coalesce=WAKE)
    return len(due)


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
