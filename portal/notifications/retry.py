"""One retry policy for everything we deliver (emails, webhooks): attempts, backoff, failure.

A row (OutboxMessage, WebhookDelivery) has status, attempts, next_attempt_at and
last_error; the policy is the only code that moves them after an attempt.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from portal.models import OutboxStatus


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
