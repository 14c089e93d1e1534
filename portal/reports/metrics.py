"""Approval metrics per client and overall: how fast, how cleanly and how punctually
clients approve, and what is still waiting on them.

Read models only. `report(period, now)` takes the period and the moment it is asked at,
and returns frozen dataclasses. Two queries fetch the few columns needed, whatever the
number of requests (the round number of each request is a correlated subquery); business
time is counted in Python, in each client's time zone, because weekday arithmetic is not
portable between SQLite and PostgreSQL.
"""
from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import aliased

from portal.extensions import db
from portal.models import (
    APPROVED_STATUSES,
    Client,
    Decision,
    Deliverable,
    Outcome,
    Project,
    RejectionScope,
    RequestStatus,
    ReviewRequest,
    Version,
)
from portal.models.people import zone_named
from portal.reports.staff_formats import day_month, day_month_year, long_month_year, month_year
from portal.workflow.workdays import business_days

DEFAULT_DAYS = 90  # the last 90 days, today included
MAX_DAYS = 3 * 366
# (label, highest age in whole business days); None: no upper bound.
AGE_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("0\N{EN DASH}2", 2), ("3\N{EN DASH}5", 5), ("6\N{EN DASH}10", 10), (_l("over 10"), None))
ROUND_BUCKETS = ("1", "2", "3", "4+")


class Grouping(StrEnum):
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive; both are UTC dates
    client_id: int | None = None
    group: Grouping = Grouping.WEEK

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time(), UTC)

    @property
    def ends_at(self) -> datetime:
        """The first moment after the period."""
        return datetime.combine(self.end + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class Rate:
    hits: int = 0
    total: int = 0

    @property
    def percent(self) -> int | None:
        """Rounded half up: 2 of 3 is 67."""
        return math.floor(100 * self.hits / self.total + 0.5) if self.total else None


@dataclass(frozen=True)
class Changes:
    """Requests closed with changes requested, by staff's classification."""

    in_scope: int = 0
    change_requests: int = 0
    unclassified: int = 0  # staff have not classified them (yet)

    @property
    def total(self) -> int:
        return self.in_scope + self.change_requests + self.unclassified


@dataclass(frozen=True)
class Summary:
    approvals: int  # requests approved (with or without conditions) in the period
    average_days: float | None  # business days from sent to approved
    median_days: float | None
    first_pass: Rate  # first requests approved / first requests closed
    approved_deliverables: int
    average_rounds: float | None  # requests per approved deliverable
    rounds: tuple[tuple[str, int], ...]  # how many deliverables took 1, 2, 3, 4+ requests
    on_time: Rate  # approved deliverables closed on or before the request's due date
    changes: Changes = Changes()


@dataclass(frozen=True)
class TrendPoint:
    start: date
    label: str  # short, for the axis: "3 Mar", "Mar 2025"
    name: str  # long, for titles: "week of 3 Mar 2025", "March 2025"
    summary: Summary


@dataclass(frozen=True)
class OpenAges:
    at: datetime  # the moment the ages are measured at
    buckets: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        return sum(count for _, count in self.buckets)


@dataclass(frozen=True)
class ClientFigures:
    client_id: int
    name: str
    summary: Summary
    open_requests: int


@dataclass(frozen=True)
class Report:
    period: Period
    overall: Summary
    open_ages: OpenAges
    trend: tuple[TrendPoint, ...]
    clients: tuple[ClientFigures, ...]  # every client with activity, by name


@dataclass(frozen=True)
class ClosedRequest:
    """One request closed in the period, with just what the figures need."""

    id: int
    deliverable_id: int
    client_id: int
    client_name: str
    status: RequestStatus
    days: float  # business days from sent to closed
    closed_on: date  # UTC date
    due_date: date
    round: int  # 1 for the deliverable's first request, 2 for its second…
    scope: RejectionScope | None = None  # changes requested: staff's classification


@dataclass(frozen=True)
class OpenRequest:
    id: int
    client_id: int
    client_name: str
    age: int  # whole business days open


# --- queries -----------------------------------------------------------------------------

def _scoped(query: Select, client_id: int | None) -> Select:
    query = (query.join(Version, ReviewRequest.version_id == Version.id)
             .join(Deliverable, Version.deliverable_id == Deliverable.id)
             .join(Project, Deliverable.project_id == Project.id)
             .join(Client, Project.client_id == Client.id))
    return query.where(Project.client_id == client_id) if client_id is not None else query


def closed_requests(period: Period) -> list[ClosedRequest]:
    """Every request closed in the period (any outcome), in one query."""
    earlier, earlier_version = aliased(ReviewRequest), aliased(Version)
    round_number = (
        select(func.count(earlier.id))
        .join(earlier_version, earlier.version_id == earlier_version.id)
        .where(earlier_version.deliverable_id == Version.deliverable_id,
               earlier.id <= ReviewRequest.id)
        .correlate(ReviewRequest, Version).scalar_subquery()
    )
    # Staff's classification of the changes requested (a client's pre-0017 answer is not).
    classified = (
        select(Decision.scope)
        .where(Decision.request_id == ReviewRequest.id, Decision.outcome == Outcome.REJECTED,
               Decision.classified_at.is_not(None))
        .order_by(Decision.id).limit(1).correlate(ReviewRequest).scalar_subquery()
    )
    query = _scoped(select(
        ReviewRequest.id, Version.deliverable_id, Client.id, Client.name, Client.timezone,
        ReviewRequest.status, ReviewRequest.sent_at, ReviewRequest.closed_at,
        ReviewRequest.due_date, round_number, classified,
    ), period.client_id).where(
        ReviewRequest.closed_at >= period.starts_at, ReviewRequest.closed_at < period.ends_at,
    ).order_by(ReviewRequest.id)
    return [
        ClosedRequest(id=rid, deliverable_id=did, client_id=cid, client_name=name,
                      status=status, days=business_days(sent, closed, zone_named(tz)),
                      closed_on=closed.astimezone(UTC).date(), due_date=due, round=n,
                      scope=RejectionScope(scope) if scope else None)
        for rid, did, cid, name, tz, status, sent, closed, due, n, scope
        in db.session.execute(query)
    ]


def open_requests(client_id: int | None, at: datetime) -> list[OpenRequest]:
    """Requests that were open at `at` (sent by then, not closed by then), in one query."""
    query = _scoped(select(ReviewRequest.id, Client.id, Client.name, Client.timezone,
                           ReviewRequest.sent_at), client_id).where(
        ReviewRequest.sent_at <= at,
        or_(ReviewRequest.closed_at.is_(None), ReviewRequest.closed_at > at),
    ).order_by(ReviewRequest.id)
    return [OpenRequest(rid, cid, name, math.floor(business_days(sent, at, zone_named(tz))))
            for rid, cid, name, tz, sent in db.session.execute(query)]


# --- figures -----------------------------------------------------------------------------

def summarise(rows: Sequence[ClosedRequest]) -> Summary:
    approved = [r for r in rows if r.status in APPROVED_STATUSES]
    days = [r.days for r in approved]
    firsts = [r for r in rows if r.round == 1]
    latest: dict[int, ClosedRequest] = {}  # each deliverable's last approval in the rows
    for r in approved:
        if r.deliverable_id not in latest or r.id > latest[r.deliverable_id].id:
            latest[r.deliverable_id] = r
    finals = list(latest.values())
    rounds = [r.round for r in finals]
    spread = Counter(min(n, len(ROUND_BUCKETS)) for n in rounds)
    return Summary(
        approvals=len(approved),
        average_days=statistics.fmean(days) if days else None,
        median_days=statistics.median(days) if days else None,
        first_pass=Rate(sum(r.status in APPROVED_STATUSES for r in firsts), len(firsts)),
        approved_deliverables=len(finals),
        average_rounds=statistics.fmean(rounds) if rounds else None,
        rounds=tuple((label, spread[n]) for n, label in enumerate(ROUND_BUCKETS, 1)),
        on_time=Rate(sum(r.closed_on <= r.due_date for r in finals), len(finals)),
        changes=_changes(rows),
    )


def _changes(rows: Sequence[ClosedRequest]) -> Changes:
    scopes = Counter(r.scope for r in rows if r.status == RequestStatus.CHANGES_REQUESTED)
    return Changes(in_scope=scopes[RejectionScope.IN_SCOPE],
                   change_requests=scopes[RejectionScope.CHANGE_REQUEST],
                   unclassified=scopes[None])


def age_buckets(rows: Iterable[OpenRequest], at: datetime) -> OpenAges:
    counts = Counter(next(label for label, high in AGE_BUCKETS if high is None or r.age <= high)
                     for r in rows)
    return OpenAges(at, tuple((label, counts[label]) for label, _high in AGE_BUCKETS))


def bucket_start(day: date, group: Grouping) -> date:
    if group == Grouping.MONTH:
        return day.replace(day=1)
    return day - timedelta(days=day.weekday())


def bucket_starts(period: Period) -> list[date]:
    starts, current = [], bucket_start(period.start, period.group)
    while current <= period.end:
        starts.append(current)
        if period.group == Grouping.MONTH:
            current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            current += timedelta(days=7)
    return starts


def _labels(start: date, group: Grouping) -> tuple[str, str]:
    """The axis label and the long name of the week or month starting on `start`, in the
    language of the page being made."""
    if group == Grouping.MONTH:
        return month_year(start), long_month_year(start)
    return day_month(start), _("week of %(day)s", day=day_month_year(start))


def trend(rows: Sequence[ClosedRequest], period: Period) -> tuple[TrendPoint, ...]:
    """One point per week (starting Monday) or month touching the period, empty ones too."""
    grouped: defaultdict[date, list[ClosedRequest]] = defaultdict(list)
    for r in rows:
        grouped[bucket_start(r.closed_on, period.group)].append(r)
    return tuple(TrendPoint(start, *_labels(start, period.group), summarise(grouped[start]))
                 for start in bucket_starts(period))


def by_client(closed: Sequence[ClosedRequest],
              still_open: Sequence[OpenRequest]) -> tuple[ClientFigures, ...]:
    names: dict[int, str] = {}
    grouped: defaultdict[int, list[ClosedRequest]] = defaultdict(list)
    for r in closed:
        names[r.client_id] = r.client_name
        grouped[r.client_id].append(r)
    open_counts = Counter(r.client_id for r in still_open)
    names.update({r.client_id: r.client_name for r in still_open})
    return tuple(ClientFigures(cid, name, summarise(grouped[cid]), open_counts[cid])
                 for cid, name in sorted(names.items(), key=lambda item: item[1].lower()))


def report(period: Period, now: datetime) -> Report:
    """Everything the metrics page shows, in two queries.

    Open requests are counted at the end of the period, or now if that is earlier."""
    closed = closed_requests(period)
    at = min(now, period.ends_at)
    still_open = open_requests(period.client_id, at)
    return Report(period=period, overall=summarise(closed),
                  open_ages=age_buckets(still_open, at), trend=trend(closed, period),
                  clients=by_client(closed, still_open))
