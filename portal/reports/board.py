"""Read models for the staff dashboard: what needs attention, and the filtered list."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Date, Integer, Select, bindparam, func, literal, or_, select, union_all
from sqlalchemy.orm import joinedload, selectinload

from portal.audit import describe
from portal.extensions import db
from portal.models import (
    APPROVED_STATES,
    Approver,
    AuditEvent,
    Condition,
    Decision,
    Deliverable,
    DeliverableState,
    Observer,
    OutboxMessage,
    OutboxStatus,
    Outcome,
    Policy,
    Project,
    RequestStatus,
    ReviewRequest,
    User,
    Version,
    today_utc,
    utcnow,
)
from portal.people.clients import account_managers
from portal.reports import conditions, feedback, renders
from portal.reports.pins import pins
from portal.workflow import seen

SECTION_SIZE = 10
PAGE_SIZE = 50


def with_rows_loaded(query: Select) -> Select:
    """Everything a dashboard row shows, in a fixed number of queries."""
    return query.options(
        selectinload(Deliverable.project).selectinload(Project.client),
        selectinload(Deliverable.owner),
        selectinload(Deliverable.reviewer),
        selectinload(Deliverable.versions).selectinload(Version.requests)
        .selectinload(ReviewRequest.approvers).selectinload(Approver.contact),
    )


def _open_requests(today: Any, *, overdue: bool) -> Select:
    late = ReviewRequest.overdue(today)
    return (select(Version.deliverable_id).join(ReviewRequest, ReviewRequest.version_id
                                                 == Version.id)
            .where(ReviewRequest.status == RequestStatus.OPEN, late if overdue else ~late))


def mine(user_id: Any) -> Any:
    """Deliverables this person owns (acts on and is chased for) or must review."""
    return or_(Deliverable.owner_id == user_id, Deliverable.reviewer_id == user_id)


# Drafts (no version yet, or one not submitted) and versions past internal review that
# are not delivered yet: staff work nobody is chasing.
TO_MOVE = (DeliverableState.DRAFT, DeliverableState.READY)


def _current_uploader() -> Any:
    """Who uploaded the deliverable's current (highest-numbered) version: one index probe
    per row (uq_versions_deliverable_id_number), only for the rows it is asked of."""
    return (select(Version.uploaded_by_id).where(Version.deliverable_id == Deliverable.id)
            .order_by(Version.number.desc()).limit(1).scalar_subquery())


def _section_queries(user_id: Any, today: Any,
                     everyone: bool) -> dict[str, tuple[Select, tuple[Any, ...]]]:
    """Each section's deliverable ids (not yet ordered or limited) and its order, most
    urgent first. Each has a partial index in that order (Deliverable BOARD_INDEXES)."""
    base = select(Deliverable.id)
    if not everyone:
        base = base.where(mine(user_id))
    late = ReviewRequest.overdue(today)
    oldest = (Deliverable.last_activity_at, Deliverable.id)  # waiting longest first
    reviews = select(Deliverable.id).where(Deliverable.state == DeliverableState.IN_REVIEW)
    if not everyone:  # assigned to me, or to nobody: anyone but the uploader may take it
        reviews = reviews.where(or_(
            Deliverable.reviewer_id == user_id,
            Deliverable.reviewer_id.is_(None) & (_current_uploader() != user_id)))
    return {
        # Only delivered deliverables have an open request; saying so lets the planner
        # walk ix_deliverables_board_overdue instead of every open request.
        "overdue": (base.where(Deliverable.state == DeliverableState.DELIVERED,
                               Deliverable.id.in_(_open_requests(today, overdue=True))),
                    (Deliverable.due_date, Deliverable.id)),
        "rejected": (base.where(Deliverable.state == DeliverableState.CHANGES_REQUESTED),
                     oldest),
        "my_reviews": (reviews, oldest),
        "to_move": (base.where(Deliverable.state.in_(TO_MOVE)), oldest),
        "with_client": (base.join(Version, Version.deliverable_id == Deliverable.id)
                        .join(ReviewRequest, ReviewRequest.version_id == Version.id)
                        .where(ReviewRequest.status == RequestStatus.OPEN, ~late),
                        (ReviewRequest.sent_at, Deliverable.id)),
        "approved": (base.where(Deliverable.state.in_(APPROVED_STATES)),
                     (Deliverable.last_activity_at.desc(), Deliverable.id.desc())),
        # Approved (or sent back) with conditions nobody has marked met or won't do yet.
        "open_conditions": (base.where(Deliverable.id.in_(
            conditions.with_open_conditions())), oldest),
    }


def _dashboard_rows_loaded(query: Select) -> Select:
    """What a dashboard row shows, in two statements whatever the rows: the row with its
    project, client, owner and reviewer (joined), then every version with its requests,
    approvers and their contacts (one joined select-in)."""
    return query.options(
        joinedload(Deliverable.project).joinedload(Project.client),
        joinedload(Deliverable.owner), joinedload(Deliverable.reviewer),
        selectinload(Deliverable.versions).joinedload(Version.requests)
        .joinedload(ReviewRequest.approvers).joinedload(Approver.contact),
    )


def attention(user: User, today: date | None = None, *,
              everyone: bool = False) -> dict[str, list[Deliverable]]:
    """The dashboard's sections, most urgent first: the person's own work (`mine`),
    or everyone's. One statement finds every section's rows (each section's query, limited,
    under UNION ALL) and loads them; one more loads their versions."""
    rows = db.session.execute(_attention_statement(everyone), {
        "board_user_id": user.id, "board_today": today or today_utc()}).all()
    sections: dict[str, list[Deliverable]] = {name: [] for name in SECTIONS}
    for deliverable, section in rows:
        sections[section].append(deliverable)
    return sections


@lru_cache(maxsize=2)
def _attention_statement(everyone: bool) -> Select:
    """Built once per scope (the person and the day are parameters): building and keying
    a statement this size costs more than running it."""
    parts = []
    for name, (query, order) in _section_queries(
            bindparam("board_user_id", type_=Integer), bindparam("board_today", type_=Date),
            everyone).items():
        # Each section's first rows, numbered in its order (UNION ALL keeps no order).
        part = (query.add_columns(func.row_number().over(order_by=order).label("position"))
                .order_by(*order).limit(SECTION_SIZE).subquery())
        parts.append(select(literal(name).label("section"), part.c.id, part.c.position))
    picked = union_all(*parts).subquery()
    return _dashboard_rows_loaded(
        select(Deliverable, picked.c.section).join(picked, picked.c.id == Deliverable.id)
        .order_by(picked.c.section, picked.c.position))


SECTIONS = ("overdue", "rejected", "my_reviews", "to_move", "with_client", "approved",
            "open_conditions")


def unseen_on(user: User, *row_lists: list[Deliverable]) -> dict[int, seen.Unseen]:
    """Each row's client comments this person has not seen, in one query for all rows."""
    return seen.unseen(user, {d.id for rows in row_lists for d in rows})


@dataclass(frozen=True)
class Filters:
    client: int | None = None
    project: int | None = None
    state: DeliverableState | None = None
    owner: int | None = None
    overdue: bool = False
    before: int | None = None  # keyset cursor: the last id of the previous page


def deliverable_page(filters: Filters, today: date | None = None,
                     size: int = PAGE_SIZE) -> tuple[list[Deliverable], int | None]:
    """One page of the full list, newest first; returns the rows and the next cursor."""
    query = with_rows_loaded(select(Deliverable)).order_by(Deliverable.id.desc())
    if filters.client:
        query = query.where(Deliverable.project_id.in_(
            select(Project.id).where(Project.client_id == filters.client)))
    if filters.project:
        query = query.where(Deliverable.project_id == filters.project)
    if filters.state:
        query = query.where(Deliverable.state == filters.state)
    if filters.owner:
        query = query.where(Deliverable.owner_id == filters.owner)
    if filters.overdue:
        query = query.where(Deliverable.id.in_(
            _open_requests(today or today_utc(), overdue=True)))
    if filters.before:
        query = query.where(Deliverable.id < filters.before)
    rows = list(db.session.scalars(query.limit(size + 1)))
    next_cursor = rows[size - 1].id if len(rows) > size else None
    return rows[:size], next_cursor


def days_waiting(deliverable: Deliverable, now: datetime | None = None) -> int:
    """Days since the deliverable last moved (since delivery while with the client)."""
    now = now or datetime.now(UTC)
    request = deliverable.open_request
    since = request.sent_at if request else deliverable.last_activity_at
    return max((now - since).days, 0)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # "event" or "email"
    title: str
    who: str
    detail: str = ""


def timeline(deliverable_id: int, emails: list[OutboxMessage]) -> list[TimelineEntry]:
    """Audit events (comments, decisions, reminders...) and emails, newest first."""
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.deliverable_id == deliverable_id)).all()
    entries = [TimelineEntry(e.at, "event", describe(e.verb), e.actor_label) for e in events]
    entries += [TimelineEntry(m.created_at, "email", _("Email: %(subject)s", subject=m.subject),
                              f"{m.to_name} <{m.to_addr}>", m.status.label) for m in emails]
    return sorted(entries, key=lambda entry: entry.at, reverse=True)


def latest_rejection(deliverable: Deliverable) -> Decision | None:
    """What the client asked to change, shown (to be classified) before "Upload a new
    version"."""
    if deliverable.state != DeliverableState.CHANGES_REQUESTED:
        return None
    return db.session.scalar(
        select(Decision).join(Version, Decision.version_id == Version.id)
        .where(Version.deliverable_id == deliverable.id, Decision.outcome == Outcome.REJECTED)
        .order_by(Decision.id.desc()).limit(1))


def _decisions_loaded() -> tuple[Any, ...]:
    """Each approver's decision and its conditions, as the deliverable page shows them."""
    to_decision = (selectinload(Deliverable.versions).selectinload(Version.requests)
                   .selectinload(ReviewRequest.approvers).selectinload(Approver.decision))
    to_conditions = to_decision.selectinload(Decision.conditions)
    return (to_conditions.selectinload(Condition.resolved_in_version),
            to_conditions.selectinload(Condition.resolved_by),
            to_decision.selectinload(Decision.classified_by))


def deliverable_detail(deliverable_id: int,
                       viewer: User | None = None) -> dict[str, Any] | None:
    """Everything the staff deliverable page shows `viewer` (their unseen client comments
    included), in a fixed number of queries."""
    deliverable = db.session.scalar(
        with_rows_loaded(select(Deliverable)).where(Deliverable.id == deliverable_id)
        .options(selectinload(Deliverable.versions).selectinload(Version.reviews),
                 selectinload(Deliverable.versions).selectinload(Version.requests)
                 .selectinload(ReviewRequest.comments),
                 selectinload(Deliverable.versions).selectinload(Version.requests)
                 .selectinload(ReviewRequest.certificate),
                 selectinload(Deliverable.versions).selectinload(Version.requests)
                 .selectinload(ReviewRequest.observers).joinedload(Observer.contact),  # CC
                 *_decisions_loaded()))
    if deliverable is None:
        return None
    version = deliverable.current_version
    emails = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.deliverable_id == deliverable.id)).all()
    return {
        "deliverable": deliverable, "timeline": timeline(deliverable.id, emails),
        "colleagues": [u for u in account_managers()
                       if version is None or u.id != version.uploaded_by_id],
        "failed_messages": [m for m in emails if m.status == OutboxStatus.FAILED],
        "rejection": latest_rejection(deliverable), "policies": list(Policy),
        "conditions": conditions.checklist(deliverable),
        "points": feedback.staff_points(deliverable),
        "today": today_utc(), "now": utcnow(), **_document(version),
        "unseen": seen.unseen(viewer, [deliverable.id]).get(deliverable.id) if viewer else None,
    }


def deliverable_document(deliverable_id: int) -> dict[str, Any] | None:
    """Just what the staff viewer block shows (its placeholder asks every 2 s): the
    deliverable, its current version in the viewer, and that version's pins."""
    deliverable = db.session.get(Deliverable, deliverable_id)
    if deliverable is None:
        return None
    return {"deliverable": deliverable, **_document(deliverable.current_version)}


def _document(version: Version | None) -> dict[str, Any]:
    """The current version in the viewer, with the pins of its newest request's thread
    (internal notes included: this is the staff page)."""
    if version is None:
        return {"viewer": None, "pins": pins([], 0), "pin_request": None}
    request = max(version.requests, key=lambda r: r.id, default=None)
    return {"viewer": renders.viewer(version.id),
            "pins": pins(request.comments if request else [], version.id),
            "pin_request": request}
