"""One delivery loop for everything we send (emails, webhooks): an attempt under a row
lock, and one retry policy for attempts, backoff and failure.

A row (OutboxMessage, WebhookDelivery) has status, attempts, next_attempt_at and
last_error; `attempt` and the policy are the only code that moves them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from portal.database import lock_row
from portal.extensions import db
from portal.models import OutboxStatus


class Undeliverable(Exception):
    """The row itself cannot be sent (a header that cannot be built): retrying cannot help,
    so it fails at once and staff see it, instead of staying pending for ever."""


@dataclass(frozen=True)
class RetryPolicy:
    intervals: tuple[int, ...]  # seconds to wait after failed attempt 1, 2, …; the last repeats
    max_attempts: int

    @classmethod
    def from_setting(cls, intervals: str, max_attempts: int) -> RetryPolicy:
        parsed = tuple(int(s) for s in str(intervals).split(",") if s.strip())
        return cls(parsed or (60,), int(max_attempts))

    def failed(self, row: Any, error: str, now: datetime) -> bool:
        """Record a failed attempt; True if another one is scheduled, False if it failed."""
        row.attempts += 1
        row.last_error = error[:2000]
        if row.attempts >= self.max_attempts:
            row.status = OutboxStatus.FAILED
            return False
        delay = self.intervals[min(row.attempts - 1, len(self.intervals) - 1)]
        row.next_attempt_at = now + timedelta(seconds=delay)
        return True

    @staticmethod
    def succeeded(row: Any) -> None:
        row.attempts += 1
        row.last_error = ""
        row.status = OutboxStatus.SENT

    @staticmethod
    def restart(row: Any, now: datetime) -> None:
        """Staff asked for it again: a fresh set of attempts, starting now."""
        row.status = OutboxStatus.PENDING
        row.attempts = 0
        row.next_attempt_at = now


@dataclass(frozen=True)
class Attempted:
    status: OutboxStatus | None  # None: no such row
    error: str = ""
    retrying: bool = False  # failed, and another attempt is scheduled


def attempt(model: Any, row_id: int, send: Callable[[Any], str], policy: RetryPolicy,
            now: datetime) -> Attempted:
    """One attempt at one pending row, locked so two workers never send it at once.

    `send` sends the row and returns "" or what went wrong (or raises Undeliverable when
    no retry can help). A job's whole unit of work,
    so it commits; a row that is gone, sent, failed or locked by another worker is left.
    """
    row = lock_row(model, row_id, skip_locked=True)
    if row is None or row.status != OutboxStatus.PENDING:
        db.session.rollback()
        return Attempted(row.status if row is not None else None)
    try:
        error = send(row)
    except Undeliverable as exc:
        error = f"cannot be sent: {exc}"
        row.attempts = policy.max_attempts - 1  # this attempt is the last
    if error:
        retrying = policy.failed(row, error, now)
    else:
        retrying = False
        policy.succeeded(row)
    status = row.status
    db.session.commit()
    return Attempted(status, error, retrying)
