"""Chasing a quiet client: reminders on business days, escalation to the deliverable's
owner, and expiry.

Silence is never approval. The database decides what is due (`next_reminder_at`), and a
unique (approver, number) key makes each reminder happen once, however many sweeps run.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Row, Select, and_, exists, or_, select, tuple_

from portal import audit, bulk
from portal.database import lock_free_rows
from portal.errors import IllegalTransition
from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    Client,
    Contact,
    Deliverable,
    OutboxMessage,
    Reminder,
    RequestStatus,
    ReviewRequest,
    User,
    Version,
    utcnow,
)
from portal.models.people import zone_named
from portal.notifications.outbox import send_after_commit
from portal.permissions import require_staff
from portal.workflow.closing import expire_request
from portal.workflow.links import link_email_row, renewed_until
from portal.workflow.workdays import business_days_after

BATCH = 1000  # approvers per sweep transaction


def _next_reminder(now: datetime, business_days: int, zone_name: str | None) -> datetime:
    return business_days_after(now, business_days, zone_named(zone_name),
                               current_app.config["REMINDER_HOUR"])


def schedule_first(approver: Approver, now: datetime) -> None:
    """Called when it becomes this approver's turn (or again after a resend)."""
    approver.next_reminder_at = _next_reminder(
        now, approver.request.reminder_first_after_days, approver.contact.client.timezone)


def _facts() -> Select:
    """What deciding and writing a reminder reads, one row per approver (no objects)."""
    return (
        select(Approver.id, Approver.status, Approver.link_revoked_at, Approver.reminders_sent,
               Approver.next_reminder_at, Approver.link_generation, Approver.request_id,
               ReviewRequest.status.label("request_status"), ReviewRequest.reminder_max,
               ReviewRequest.reminder_every_days, ReviewRequest.link_ttl_days,
               Contact.name.label("contact_name"), Contact.email.label("contact_email"),
               Client.timezone, Deliverable.id.label("deliverable_id"),
               User.email.label("owner_email"))
        .join(ReviewRequest, ReviewRequest.id == Approver.request_id)
        .join(Version, Version.id == ReviewRequest.version_id)
        .join(Deliverable, Deliverable.id == Version.deliverable_id)
        .join(User, User.id == Deliverable.owner_id)
        .join(Contact, Contact.id == Approver.contact_id)
        .join(Client, Client.id == Contact.client_id))


def _remind_rows(facts: Sequence[Row], now: datetime, manual: bool) -> int:
    """Decide and write reminder n+1 for each of these approvers (their rows locked by the
    caller), in one statement per table. The one path of remind() and the sweep."""
    stopped: list[int] = []
    overdue: set[int] = set()
    due: list[Row] = []
    for row in facts:
        if row.request_status != RequestStatus.OPEN or row.status != ApproverStatus.INVITED \
                or row.link_revoked_at is not None:
            stopped.append(row.id)
        elif row.reminders_sent >= row.reminder_max and not manual:
            overdue.add(row.request_id)  # escalates instead, once per request
            stopped.append(row.id)
        else:
            due.append(row)
    bulk.update_by_id(Approver.__table__, [{"id": i, "next_reminder_at": None}
                                           for i in stopped])
    for request_id in sorted(overdue):
        escalate(db.session.get(ReviewRequest, request_id), now)
    # The (approver, number) key: a reminder another sweep already sent is skipped whole.
    fresh = set(bulk.insert_new(Reminder.__table__, [
        {"approver_id": row.id, "number": row.reminders_sent + 1, "manual": manual,
         "sent_at": now} for row in due], unique=["approver_id", "number"],
        returning=Reminder.approver_id))
    sent = [row for row in due if row.id in fresh]
    if not sent:
        return 0
    bulk.update_by_id(Approver.__table__, [
        {"id": row.id, "reminders_sent": row.reminders_sent + 1,
         "next_reminder_at": _next_reminder(now, row.reminder_every_days, row.timezone),
         "link_expires_at": renewed_until(now, row.link_ttl_days)} for row in sent])
    emails = bulk.insert_new(OutboxMessage.__table__, [
        link_email_row(approver_id=row.id, generation=row.link_generation,
                       to_addr=row.contact_email or "", to_name=row.contact_name,
                       reply_to=row.owner_email, deliverable_id=row.deliverable_id,
                       template="reminder", number=row.reminders_sent + 1,
                       idempotency_key=f"reminder:{row.id}:{row.reminders_sent + 1}")
        for row in sent], unique=["idempotency_key"], returning=OutboxMessage.id)
    for message_id in sorted(emails):
        send_after_commit(message_id)
    # Last, so the chain's lock is held only until the caller commits.
    audit.record_many(None, "reminder.sent", Approver, [
        audit.Entry(row.id, row.deliverable_id,
                    {"number": row.reminders_sent + 1, "manual": manual,
                     "to": row.contact_email}) for row in sent])
    return len(sent)


def remind(approver: Approver, now: datetime, *, manual: bool = False) -> bool:
    """Send reminder number n+1 to this approver, once. False if nothing was sent."""
    db.session.flush()
    facts = db.session.execute(_facts().where(Approver.id == approver.id)
                               .with_for_update(of=Approver)).all()
    sent = _remind_rows(facts, now, manual)
    db.session.expire(approver)  # its row was written in bulk, past the session
    return sent == 1


def send_reminder_now(actor: User, approver: Approver, now: datetime | None = None) -> None:
    """Staff nudge by hand; it counts as one of the reminders."""
    require_staff(actor)
    if approver.request.status != RequestStatus.OPEN or \
            approver.status != ApproverStatus.INVITED:
        raise IllegalTransition(_("%(name)s is not waiting to decide.",
                                  name=approver.contact.name))
    if approver.link_revoked_at is not None:
        raise IllegalTransition(_("%(name)s's link is revoked; resend it first.",
                                  name=approver.contact.name))
    remind(approver, now or utcnow(), manual=True)


def remind_everyone_waiting(actor: User, request: ReviewRequest,
                            now: datetime | None = None) -> int:
    """`send_reminder_now` for each approver whose turn it is and whose link works. With
    nobody to remind, the refusal for the first of them says why (a revoked link, a
    request no longer waiting)."""
    waiting = request.waiting_on
    targets = ([a for a in waiting if a.link_revoked_at is None] or waiting[:1]
               or request.approvers[:1])
    for approver in targets:
        send_reminder_now(actor, approver, now)
    return len(targets)


def escalate(request: ReviewRequest, now: datetime) -> bool:
    """Mark the request overdue and tell the deliverable's owner, once."""
    if request.escalated_at is not None:
        return False
    request.escalated_at = now
    audit.record(None, "request.escalated", request, deliverable=request.version.deliverable,
                 days_silent=max((now - request.sent_at).days, 0),
                 due_date=request.due_date.isoformat())
    return True


@dataclass
class SweepReport:
    reminders: int = 0
    escalations: int = 0
    expired: int = 0


def due_query(now: datetime, cursor: tuple[datetime, int] | None = None) -> Select:
    """One batch of approvers whose reminder is due, by keyset over ix_approvers_due, their
    rows locked, skipping any another sweep holds (PostgreSQL re-checks a row it locks, so
    one another sweep just reminded drops out). Alone, so its plan stays the index scan."""
    query = (select(Approver.id, Approver.next_reminder_at)
             .where(Approver.status == ApproverStatus.INVITED, Approver.next_reminder_at <= now)
             .order_by(Approver.next_reminder_at, Approver.id).limit(BATCH)
             .with_for_update(skip_locked=True))
    if cursor is not None:
        query = query.where(tuple_(Approver.next_reminder_at, Approver.id) > cursor)
    return query


def sweep(now: datetime) -> SweepReport:
    """Everything that is due at `now`, expiries first (a dead link gets no reminder).

    The sweep owns its transactions: each batch of reminders is one (all its rows or
    none), so a crash leaves nothing half-done and locks are held briefly. Call it with
    no transaction of your own open.
    """
    report = SweepReport()
    report.expired = _expire_stale(now)
    report.escalations = _escalate_overdue(now)
    cursor: tuple[datetime, int] | None = None
    while True:
        due = db.session.execute(due_query(now, cursor)).all()
        if not due:
            break
        cursor = (due[-1].next_reminder_at, due[-1].id)
        facts = db.session.execute(_facts().where(Approver.id.in_([row.id for row in due]))
                                   .order_by(Approver.next_reminder_at, Approver.id)).all()
        report.reminders += _remind_rows(facts, now, manual=False)
        db.session.commit()
    db.session.commit()  # ends the last (empty) read
    return report


def _escalate_overdue(now: datetime) -> int:
    overdue = db.session.scalars(
        select(ReviewRequest.id).where(ReviewRequest.status == RequestStatus.OPEN,
                                       ReviewRequest.escalated_at.is_(None),
                                       ReviewRequest.past_due(now.date()))
    ).all()
    count = sum(escalate(request, now) for request in lock_free_rows(ReviewRequest, list(overdue)))
    db.session.commit()
    return count


def _expire_stale(now: datetime) -> int:
    """Open requests none of whose invited approvers holds a live link any more."""
    candidates = select(Approver.request_id).where(
        Approver.status == ApproverStatus.INVITED, Approver.link_expires_at < now)
    live_link = exists().where(and_(
        Approver.request_id == ReviewRequest.id, Approver.status == ApproverStatus.INVITED,
        or_(Approver.link_expires_at.is_(None), Approver.link_expires_at >= now)))
    stale = db.session.scalars(
        select(ReviewRequest.id).where(ReviewRequest.id.in_(candidates),
                                       ReviewRequest.status == RequestStatus.OPEN, ~live_link)
    ).all()
    count = 0
    for request in lock_free_rows(ReviewRequest, list(stale)):
        if request.status == RequestStatus.OPEN:
            expire_request(request, now)
            count += 1
    db.session.commit()
    return count
