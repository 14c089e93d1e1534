"""One delivery loop for everything we send (emails, webhooks): an attempt at a batch of
rows that holds no transaction while it sends, and one retry policy for attempts, backoff
and failure.

A row (OutboxMessage, WebhookDelivery) has status, attempts, next_attempt_at,
claimed_until and last_error; `attempt` and the policy are the only code that moves them.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from portal.database import lock_free_rows, lock_row
from portal.extensions import db
from portal.models import OutboxStatus, utcnow

log = logging.getLogger(__name__)

# How long a claim keeps other workers off a row: longer than any send may take (SMTP
# times out after 15 s a step, webhooks after WEBHOOK_TIMEOUT in all), short enough that
# the relay soon hands on the row of a worker that died mid-send.
LEASE = timedelta(minutes=5)


class Undeliverable(Exception):
    """The row itself cannot be sent (a header that cannot be built): retrying cannot help,
    so it fails at once and staff see it, instead of staying pending for ever."""


class NotNeeded(Exception):
    """`prepare` found the row no longer worth sending (a reminder whose request closed):
    it ends SKIPPED with the reason, in plain words, as its last_error; not a failure."""


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
    def succeeded(model: Any) -> dict[str, Any]:
        """A successful attempt's changes, as one UPDATE's values (delivery._record)."""
        return {"attempts": model.attempts + 1, "last_error": "",
                "status": OutboxStatus.SENT, "claimed_until": None}

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
    attempted: bool = False  # this call sent it or gave up on it (not: left alone)


@dataclass(frozen=True)
class Outcome:
    """What one send did: "" or what went wrong, and the row's fields to set either way.
    `final`: retrying cannot help (the row fails at once, as with Undeliverable)."""

    error: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    final: bool = False


Send = Callable[[], Outcome]
P = TypeVar("P")
# A transport for a batch: opened once after the claim is committed, it sends one
# prepared payload at a time (an email over one SMTP connection, a webhook's POST).
Transport = Callable[[], AbstractContextManager[Callable[[P], Outcome]]]
# The unsent rest of a batch is handed back when this little of its lease is left.
LEASE_MARGIN = timedelta(minutes=1)


def attempt(model: Any, row_id: int, prepare: Callable[[Any], Send | None],
            policy: RetryPolicy, now: datetime) -> Attempted:
    """One attempt at one pending row: `attempt_many` with a batch of one, whose prepared
    payload is the `send` to call. A job's whole unit of work, so it commits."""
    return attempt_many(model, [row_id], prepare, _calls, policy, now)[row_id]


@contextmanager
def _calls() -> Iterator[Callable[[Send], Outcome]]:
    yield lambda send: send()


def attempt_many(model: Any, ids: list[int], prepare: Callable[[Any], P | None],
                 transport: Transport[P], policy: RetryPolicy,
                 now: datetime) -> dict[int, Attempted]:
    """One attempt at each of these pending rows, so that no transaction or row lock is
    held while anything is sent: claim them all (one short transaction), then send each
    through one `transport` and record its outcome at once (a short transaction each, so
    a worker killed mid-batch leaves at most the message in flight unrecorded).

    `prepare(row)` reads what sending needs, inside the claim (None: leave the row alone
    for now; Undeliverable: no retry can help; NotNeeded: skipped, no retry). A row that
    is gone, sent, failed, skipped, locked or claimed by another worker is left. Commits;
    returns each row's result.
    """
    results: dict[int, Attempted] = {i: Attempted(None) for i in ids}
    claimed: list[tuple[int, P]] = []
    for row in lock_free_rows(model, ids):
        busy = row.claimed_until is not None and row.claimed_until > utcnow()
        if row.status != OutboxStatus.PENDING or busy:  # sent, failed, or being sent
            results[row.id] = Attempted(row.status)
            continue
        try:
            payload = prepare(row)
        except Undeliverable as exc:
            results[row.id] = _apply(row, Outcome(f"cannot be sent: {exc}", final=True),
                                     policy, now)
            continue
        except NotNeeded as exc:
            results[row.id] = _skip(row, str(exc))
            continue
        except SQLAlchemyError:
            raise
        except Exception as exc:  # one row's bug must not hold up the batch: it retries
            log.exception("preparing %s %s failed", model.__name__, row.id)
            results[row.id] = _apply(row, Outcome(f"{type(exc).__name__}: {exc}"),
                                     policy, now)
            continue
        if payload is None:
            results[row.id] = Attempted(row.status)
            continue
        claimed.append((row.id, payload))
    lease = utcnow() + LEASE
    if claimed:
        db.session.execute(update(model).where(model.id.in_([i for i, _ in claimed]))
                           .values(claimed_until=lease))
    if claimed or any(r.attempted for r in results.values()):
        db.session.commit()
    else:  # nothing to claim or record: no commit (and none of its after-commit work)
        db.session.rollback()
    if not claimed:
        return results

    # Rows handed to the transport: from then on only their record or their lease frees
    # them, so a failure while recording never hands back a message already sent.
    offered = 0
    try:
        with transport() as send:
            for row_id, payload in claimed:
                if utcnow() > lease - LEASE_MARGIN:
                    break  # the rest goes back before another worker may take it over
                offered += 1
                try:
                    outcome = send(payload)
                except Undeliverable as exc:
                    outcome = Outcome(f"cannot be sent: {exc}", final=True)
                except Exception as exc:  # a transport's bug fails its message, not the batch
                    log.exception("sending %s %s failed", model.__name__, row_id)
                    outcome = Outcome(f"{type(exc).__name__}: {exc}")
                results[row_id] = _record(model, row_id, lease, outcome, policy, now)
    finally:
        rest = [i for i, _ in claimed[offered:]]
        if rest:  # not attempted: released, no attempt counted
            db.session.rollback()
            db.session.execute(update(model).where(model.id.in_(rest),
                                                   model.claimed_until == lease)
                               .values(claimed_until=None))
            db.session.commit()
    return results


def _record(model: Any, row_id: int, lease: datetime, outcome: Outcome,
            policy: RetryPolicy, now: datetime) -> Attempted:
    ours = (model.id == row_id, model.status == OutboxStatus.PENDING,
            model.claimed_until == lease)
    if not outcome.error and not outcome.final:  # the common case: one UPDATE, one commit
        done = db.session.execute(update(model).where(*ours).values(
            **outcome.fields, **RetryPolicy.succeeded(model)).execution_options(
            synchronize_session=False)).rowcount
        if done:
            db.session.commit()
            return Attempted(OutboxStatus.SENT, attempted=True)
        db.session.rollback()
    row = lock_row(model, row_id)
    if row is None or row.status != OutboxStatus.PENDING or row.claimed_until != lease:
        # Staff restarted it, or another worker took over after the lease ran out: their
        # attempt's word stands, and this send was one more of the same (a webhook keeps
        # its event id, so receivers drop the repeat; an email arrives twice at worst).
        status = row.status if row is not None else None
        db.session.rollback()
        return Attempted(status, outcome.error, attempted=True)
    result = _apply(row, outcome, policy, now)
    db.session.commit()
    return result


def _skip(row: Any, reason: str) -> Attempted:
    """Not sent and never will be, on the locked row: no attempt is counted."""
    row.status = OutboxStatus.SKIPPED
    row.last_error = reason[:2000]
    row.claimed_until = None
    return Attempted(row.status, reason, attempted=True)


def _apply(row: Any, outcome: Outcome, policy: RetryPolicy, now: datetime) -> Attempted:
    """A failed attempt (retried or final), on the locked row."""
    for name, value in outcome.fields.items():
        setattr(row, name, value)
    row.claimed_until = None
    if outcome.final:
        row.attempts = policy.max_attempts - 1  # this attempt is the last
    retrying = policy.failed(row, outcome.error or "failed", now)
    return Attempted(row.status, outcome.error, retrying, attempted=True)
