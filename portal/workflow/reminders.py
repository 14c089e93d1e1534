"""Chasing a quiet client: reminders on business days, escalation to the deliverable's
owner, and expiry.

Silence is never approval. The database decides what is due (`next_reminder_at`), and a
unique (approver, number) key makes each reminder happen once, however many sweeps run.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import Select, and_, exists, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal import audit
from portal.database import lock_free_rows
from portal.errors import IllegalTransition
from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    Contact,
    Deliverable,
    Project,
    Reminder,
    RequestStatus,
    ReviewRequest,
    User,
    Version,
    utcnow,
)
from portal.permissions import require_staff
from portal.workflow.closing import expire_request
from portal.workflow.links import send_review_link
from portal.workflow.workdays import business_days_after

BATCH = 200


def _next_reminder(approver: Approver, now: datetime, business_days: int) -> datetime:
    return business_days_after(now, business_days, approver.contact.client.zone,
                               current_app.config["REMINDER_HOUR"])


def schedule_first(approver: Approver, now: datetime) -> None:
    """Called when it becomes this approver's turn (or again after a resend)."""
    approver.next_reminder_at = _next_reminder(approver, now,
                                               approver.request.reminder_first_after_days)


def remind(approver: Approver, now: datetime, *, manual: bool = False) -> bool:
    """Send reminder number n+1 to this approver, once. False if nothing was sent."""
    request = approver.request
    if request.status != RequestStatus.OPEN or approver.status != ApproverStatus.INVITED \
            or approver.link_revoked_at is not None:
        approver.next_reminder_at = None
        return False
    if approver.reminders_sent >= request.reminder_max and not manual:
        escalate(request, now)
        approver.next_reminder_at = None
        return False
    number = approver.reminders_sent + 1
    try:
        with db.session.begin_nested():
            db.session.add(Reminder(approver_id=approver.id, number=number, manual=manual,
                                    sent_at=now))
    except IntegrityError:  # another sweep sent this one
        return False
    approver.reminders_sent = number
    approver.next_reminder_at = _next_reminder(approver, now, request.reminder_every_days)
    send_review_link(approver, now, template="reminder",
                     idempotency_key=f"reminder:{approver.id}:{number}", number=number)
    audit.record(None, "reminder.sent", approver, deliverable=request.version.deliverable,
                 number=number, manual=manual, to=approver.contact.email)
    return True


def send_reminder_now(actor: User, approver: Approver, now: datetime | None = None) -> None:
    """Staff nudge by hand; it counts as one of the reminders."""
    require_staff(actor)
    if approver.request.status != RequestStatus.OPEN or \
            approver.status != ApproverStatus.INVITED:
        raise IllegalTransition(f"{approver.contact.name} is not waiting to decide.")
    if approver.link_revoked_at is not None:
        raise IllegalTransition(f"{approver.contact.name}'s link is revoked; resend it first.")
    remind(approver, now or utcnow(), manual=True)


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


# What remind() reads, loaded per batch instead of per reminder.
_APPROVER_CONTEXT = (
    selectinload(Approver.contact).selectinload(Contact.client),
    selectinload(Approver.request).selectinload(ReviewRequest.version)
    .selectinload(Version.deliverable).selectinload(Deliverable.owner),
    selectinload(Approver.request).selectinload(ReviewRequest.version)
    .selectinload(Version.deliverable).selectinload(Deliverable.project)
    .selectinload(Project.client),
)


def due_query(now: datetime, cursor: tuple[datetime, int] | None = None) -> Select:
    """One batch of approvers whose reminder is due, by keyset over ix_approvers_due."""
    query = (select(Approver.id, Approver.next_reminder_at)
             .where(Approver.status == ApproverStatus.INVITED, Approver.next_reminder_at <= now)
             .order_by(Approver.next_reminder_at, Approver.id).limit(BATCH))
    if cursor is not None:
        query = query.where(tuple_(Approver.next_reminder_at, Approver.id) > cursor)
    return query


def sweep(now: datetime) -> SweepReport:
    """Everything that is due at `now`, expiries first (a dead link gets no reminder).

    The sweep owns its transactions: it commits every batch, so a crash loses little and
    locks are held briefly. Call it with no transaction of your own open.
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
        for approver in lock_free_rows(Approver, [row.id for row in due], *_APPROVER_CONTEXT):
            if approver.next_reminder_at is not None and approver.next_reminder_at <= now:
                report.reminders += remind(approver, now)
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
