"""One delivery loop for everything we send (emails, webhooks): an attempt that holds no
transaction while it sends, and one retry policy for attempts, backoff and failure.

A row (OutboxMessage, WebhookDelivery) has status, attempts, next_attempt_at,
claimed_until and last_error; `attempt` and the policy are the only code that moves them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from portal.database import lock_row
from portal.extensions import db
from portal.models import OutboxStatus, utcnow

# How long a claim keeps other workers off a row: longer than any send may take (SMTP
# times out after 15 s a step, webhooks after WEBHOOK_TIMEOUT in all), short enough that
# the relay soon hands on the row of a worker that died mid-send.
LEASE = timedelta(minutes=5)


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
        """Staff asked for it again: a fresh set of attempts, starting now (an attempt under
        way loses its claim, so its result no longer counts; the fresh one does)."""
        row.status = OutboxStatus.PENDING
        row.attempts = 0
        row.next_attempt_at = now
        row.claimed_until = None


@dataclass(frozen=True)
class Attempted:
    status: OutboxStatus | None  # None: no such row
    error: str = ""
    retrying: bool = False  # failed, and another attempt is scheduled


@dataclass(frozen=True)
class Outcome:
    """What one send did: "" or what went wrong, and the row's fields to set either way."""

    error: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


Send = Callable[[], Outcome]


def attempt(model: Any, row_id: int, prepare: Callable[[Any], Send | None],
            policy: RetryPolicy, now: datetime) -> Attempted:
    """One attempt at one pending row, in three steps so that no transaction or row lock is
    held while it is sent: claim the row (a short transaction), send, record (another).

    `prepare(row)` reads what sending needs and returns the `send` to call once the claim
    is committed (None: leave the row alone for now). Either may raise Undeliverable when
    no retry can help. A row that is gone, sent, failed, locked or claimed by another
    worker is left. A job's whole unit of work, so it commits.
    """
    row = lock_row(model, row_id, skip_locked=True)
    status = row.status if row is not None else None
    claimed = row is not None and row.claimed_until is not None and row.claimed_until > utcnow()
    if status != OutboxStatus.PENDING or claimed:  # sent, failed, gone, or being sent
        db.session.rollback()
        return Attempted(status)
    try:
        send = prepare(row)
    except Undeliverable as exc:
        return _record(row, Outcome(f"cannot be sent: {exc}"), policy, now, final=True)
    if send is None:
        db.session.rollback()
        return Attempted(status)
    lease = row.claimed_until = utcnow() + LEASE
    db.session.commit()

    try:
        outcome = send()
    except Undeliverable as exc:
        outcome, final = Outcome(f"cannot be sent: {exc}"), True
    else:
        final = False

    row = lock_row(model, row_id)
    if row is None or row.status != OutboxStatus.PENDING or row.claimed_until != lease:
        # Staff restarted it, or another worker took over after the lease ran out: their
        # attempt's word stands, and this send was one more of the same (a webhook keeps
        # its event id, so receivers drop the repeat; an email arrives twice at worst).
        status = row.status if row is not None else None
        db.session.rollback()
        return Attempted(status, outcome.error)
    return _record(row, outcome, policy, now, final=final)


def _record(row: Any, outcome: Outcome, policy: RetryPolicy, now: datetime, *,
            final: bool = False) -> Attempted:
    for name, value in outcome.fields.items():
        setattr(row, name, value)
    row.claimed_until = None
    if final:
        row.attempts = policy.max_attempts - 1  # this attempt is the last
    if outcome.error:
        retrying = policy.failed(row, outcome.error, now)
    else:
        retrying = False
        policy.succeeded(row)
    status = row.status
    db.session.commit()
    return Attempted(status, outcome.error, retrying)
