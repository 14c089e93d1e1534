"""Approved work for finance: the filtered list and its CSV rows."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.models import (
    APPROVED_STATUSES,
    Approver,
    Condition,
    Decision,
    Deliverable,
    Project,
    ReviewRequest,
    Version,
)

PAGE_SIZE = 25
CSV_HEADER = ["certificate", "client", "project", "deliverable", "version", "file", "sha256",
              "approved_at_utc", "outcome", "approvers", "conditions", "open_conditions"]


@dataclass(frozen=True)
class Filters:
    client: int | None = None
    project: int | None = None
    start: date | None = None
    end: date | None = None  # inclusive


def _query(filters: Filters) -> Select:
    query = (
        select(ReviewRequest).join(ReviewRequest.version).join(Version.deliverable)
        .join(Deliverable.project)
        .where(ReviewRequest.status.in_(APPROVED_STATUSES))
        .order_by(ReviewRequest.closed_at.desc(), ReviewRequest.id.desc())
        .options(selectinload(ReviewRequest.version).selectinload(Version.deliverable)
                 .selectinload(Deliverable.project).selectinload(Project.client),
                 selectinload(ReviewRequest.approvers).selectinload(Approver.contact),
                 selectinload(ReviewRequest.approvers).selectinload(Approver.decision)
                 .selectinload(Decision.conditions).selectinload(Condition.resolved_in_version),
                 selectinload(ReviewRequest.certificate))
    )
    if filters.client:
        query = query.where(Project.client_id == filters.client)
    if filters.project:
        query = query.where(Deliverable.project_id == filters.project)
    if filters.start:
        query = query.where(ReviewRequest.closed_at >= datetime.combine(filters.start, time(), UTC))
    if filters.end:
        end = datetime.combine(filters.end + timedelta(days=1), time(), UTC)
        query = query.where(ReviewRequest.closed_at < end)
    return query


def approved_page(filters: Filters, page: int) -> tuple[list[ReviewRequest], int, int]:
    """One page of approved requests, newest first: (rows, total, number of pages)."""
    query = _query(filters)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(db.session.scalars(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)))
    return rows, total or 0, max(((total or 0) + PAGE_SIZE - 1) // PAGE_SIZE, 1)


def _cell(value: Any) -> Any:
    """Text a client typed must not run as a formula when finance opens the CSV."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_rows(filters: Filters) -> Iterator[list[Any]]:
    """The header, then one row per approved request, every cell safe for spreadsheets."""
    yield CSV_HEADER
    for r in db.session.scalars(_query(filters)):
        deliverable = r.version.deliverable
        decided = [a for a in r.approvers if a.decision]
        conditions = " | ".join(
            [f"{a.contact.name}: {c.text} ({c.resolution})"
             for a in decided for c in a.decision.conditions]
            + [f"{a.contact.name} (note): {a.decision.text}" for a in decided if a.decision.text])
        still_open = sum(c.is_open for a in decided for c in a.decision.conditions)
        yield [_cell(value) for value in [
            r.certificate.public_id if r.certificate else "", deliverable.project.client.name,
            deliverable.project.name, deliverable.title, r.version.number, r.version.file_name,
            r.version.sha256, r.closed_at.strftime("%Y-%m-%d %H:%M:%S") if r.closed_at else "",
            r.status.value, "; ".join(f"{a.contact.name} <{a.contact.email}>"
                                      for a in r.approvers), conditions, still_open,
        ]]
