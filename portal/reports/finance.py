"""Approved work for finance: the filtered list and its CSV rows."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.i18n import in_language, portal_language
from portal.models import (
    APPROVED_STATUSES,
    Approver,
    Condition,
    Decision,
    Deliverable,
    Outcome,
    Project,
    RejectionScope,
    ReviewRequest,
    Version,
)

PAGE_SIZE = 25
CSV_HEADER = ["certificate", "client", "project", "deliverable", "version", "file", "sha256",
              "approved_at_utc", "outcome", "approvers", "conditions", "open_conditions",
              "change_requests", "changes_requested"]


@dataclass(frozen=True)
class Filters:
    client: int | None = None
    project: int | None = None
    start: date | None = None
    end: date | None = None  # inclusive


def approved_query(filters: Filters) -> Select:
    """Approved requests, newest first, with the filters applied: the finance page and the
    API's certificate list read the same rows."""
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
    if filters.end and filters.end < date.max:  # the last day there is ends nothing
        end = datetime.combine(filters.end + timedelta(days=1), time(), UTC)
        query = query.where(ReviewRequest.closed_at < end)
    return query


def approved_page(filters: Filters, page: int) -> tuple[list[ReviewRequest], int, int]:
    """One page of approved requests, newest first: (rows, total, number of pages)."""
    query = approved_query(filters)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(db.session.scalars(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)))
    return rows, total or 0, max(((total or 0) + PAGE_SIZE - 1) // PAGE_SIZE, 1)


def _cell(value: Any) -> Any:
    """Text a client typed must not run as a formula when finance opens the CSV."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _changes_asked(deliverable_ids: Iterable[int]) -> dict[int, list[tuple[int, Decision]]]:
    """Each deliverable's changes-requested decisions with their version's number, oldest
    first, in one query."""
    found: defaultdict[int, list[tuple[int, Decision]]] = defaultdict(list)
    rows = db.session.execute(
        select(Version.deliverable_id, Version.number, Decision)
        .join(Version, Decision.version_id == Version.id)
        .where(Version.deliverable_id.in_(set(deliverable_ids)),
               Decision.outcome == Outcome.REJECTED)
        .order_by(Decision.id).options(selectinload(Decision.approver)
                                       .selectinload(Approver.contact)))
    for deliverable_id, number, decision in rows:
        found[deliverable_id].append((number, decision))
    return found


def _change_cells(asked: list[tuple[int, Decision]], upto: int) -> tuple[int, str]:
    """For the approval of version `upto`: how many of the changes asked on the way there
    staff classified as change requests, and each with its classification (or "not
    classified yet")."""
    earlier = [(n, d) for n, d in asked if n <= upto]
    billable = sum(d.classification == RejectionScope.CHANGE_REQUEST for _, d in earlier)
    described = " | ".join(
        _("version %(number)s, %(scope)s", number=n, scope=d.classification.label
          if d.classification else _("not classified yet"))
        + (f" ({d.classification_note})" if d.classification and d.classification_note else "")
        + f": {d.approver.contact.name}: {d.text}" for n, d in earlier)
    return billable, described


def csv_rows(filters: Filters) -> Iterator[list[Any]]:
    """The header, then one row per approved request, every cell safe for spreadsheets.
    Its words are the portal's, whoever downloads it: billing tools read these files."""
    yield CSV_HEADER
    for chunk in db.session.scalars(approved_query(filters)).partitions(500):
        asked = _changes_asked(r.version.deliverable_id for r in chunk)
        with in_language(portal_language()):
            rows = [_csv_row(r, asked[r.version.deliverable_id]) for r in chunk]
        yield from rows


def _csv_row(r: ReviewRequest, asked: list[tuple[int, Decision]]) -> list[Any]:
    deliverable = r.version.deliverable
    decided = [a for a in r.approvers if a.decision]
    conditions = " | ".join(
        [f"{a.contact.name}: {c.text} ({c.resolution})"
         for a in decided for c in a.decision.conditions]
        + [f"{a.contact.name} (note): {a.decision.text}" for a in decided if a.decision.text])
    still_open = sum(c.is_open for a in decided for c in a.decision.conditions)
    return [_cell(value) for value in [
        r.certificate.public_id if r.certificate else "", deliverable.project.client.name,
        deliverable.project.name, deliverable.title, r.version.number, r.version.file_name,
        r.version.sha256, r.closed_at.strftime("%Y-%m-%d %H:%M:%S") if r.closed_at else "",
        r.status.value, "; ".join(f"{a.contact.name} <{a.contact.email}>"
                                  for a in r.approvers), conditions, still_open,
        *_change_cells(asked, r.version.number),
    ]]
