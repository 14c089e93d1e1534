"""Read models of conditions: which deliverables have open ones (the dashboard), and each
deliverable's checklist (the staff page)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, func, select

from portal.extensions import db
from portal.models import (
    Approver,
    Condition,
    ConditionStatus,
    Decision,
    Deliverable,
    Version,
)


def with_open_conditions() -> Select:
    """The ids of deliverables with at least one open condition."""
    return (select(Version.deliverable_id).join(Decision, Decision.version_id == Version.id)
            .join(Condition, Condition.decision_id == Decision.id)
            .where(Condition.status == ConditionStatus.OPEN))


def open_counts(deliverables: Sequence[Deliverable]) -> dict[int, int]:
    """Open conditions per deliverable, in one query."""
    ids = [d.id for d in deliverables]
    rows = db.session.execute(
        select(Version.deliverable_id, func.count(Condition.id))
        .join(Decision, Decision.version_id == Version.id)
        .join(Condition, Condition.decision_id == Decision.id)
        .where(Condition.status == ConditionStatus.OPEN, Version.deliverable_id.in_(ids))
        .group_by(Version.deliverable_id)).all()
    return {deliverable_id: count for deliverable_id, count in rows}


@dataclass(frozen=True)
class ChecklistItem:
    condition: Condition
    approver: Approver
    decision: Decision
    version: Version  # the version decided on
    later_versions: list[Version]  # where it may be met


def checklist(deliverable: Deliverable) -> list[ChecklistItem]:
    """Every condition set on this deliverable, open ones first, each with the versions
    that may meet it (from what the caller loaded: no queries of its own)."""
    items = [
        ChecklistItem(condition, approver, approver.decision, version,
                      [v for v in deliverable.versions if v.number > version.number])
        for version in deliverable.versions for request in version.requests
        for approver in request.approvers if approver.decision is not None
        for condition in approver.decision.conditions
    ]
    return sorted(items, key=lambda i: (not i.condition.is_open, -i.version.number,
                                        i.approver.position, i.condition.position))
