"""The client's review page: who is looking, what they may see, and what the page shows."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    Condition,
    Decision,
    RequestStatus,
    ReviewRequest,
    Version,
)
from portal.reports import feedback, renders
from portal.reports.pins import pins
from portal.workflow import step_up
from portal.workflow.comments import client_thread
from portal.workflow.turns import request_status_for


def approver_by_public_id(public_id: Any) -> Approver | None:
    """The approver a client session names, with their request's approvers loaded."""
    if not isinstance(public_id, str):
        return None
    return db.session.scalar(
        select(Approver).where(Approver.public_id == public_id).options(
            selectinload(Approver.request).selectinload(ReviewRequest.approvers)
            .selectinload(Approver.contact),
            selectinload(Approver.request).selectinload(ReviewRequest.approvers)
            .selectinload(Approver.decision).selectinload(Decision.conditions)
            .selectinload(Condition.resolved_in_version),
            selectinload(Approver.contact)))


def shared_version(approver: Approver, version_id: int) -> Version | None:
    """A version of this approver's deliverable that was sent to the client (the one under
    review, or an earlier one that had a request of its own); None for anything else."""
    version = db.session.get(Version, version_id)
    request = approver.request
    if version is None or version.deliverable_id != request.version.deliverable_id:
        return None
    return version if version.id == request.version_id or version.requests else None


def page(approver: Approver) -> dict[str, Any]:
    """Everything the page shows, in a fixed number of queries."""
    review_request = approver.request
    version = db.session.scalar(
        select(Version).where(Version.id == review_request.version_id)
        .options(selectinload(Version.deliverable)))
    deliverable = version.deliverable
    history = db.session.scalars(
        select(Version).where(Version.deliverable_id == deliverable.id,
                              Version.number < version.number, Version.requests.any())
        .order_by(Version.number.desc())
        .options(selectinload(Version.requests).selectinload(ReviewRequest.approvers)
                 .selectinload(Approver.decision).selectinload(Decision.conditions)
                 .selectinload(Condition.resolved_in_version),
                 selectinload(Version.requests).selectinload(ReviewRequest.approvers)
                 .selectinload(Approver.contact))).all()
    return {
        "approver": approver, "review_request": review_request, "version": version,
        "deliverable": deliverable, "project": deliverable.project,
        "client": deliverable.project.client, "history": history,
        "earlier_conditions": _earlier_conditions(history),
        "earlier_points": feedback.earlier_points(version),
        "status_line": request_status_for(approver),
        "standing": {a.id: standing(a, approver) for a in review_request.approvers},
        "step_up": step_up.state(approver),
        **thread(approver),
    }


def _earlier_conditions(history: list[Version]) -> list[dict[str, Any]]:
    """The approvals with conditions on earlier versions, newest version first: each
    condition and how it stands now."""
    return [{"version": v, "approver": a} for v in history for r in v.requests
            for a in r.approvers if a.decision is not None and a.decision.conditions]


def thread(approver: Approver) -> dict[str, Any]:
    """The thread and what the viewer shows of it (the pages and their pins): what a
    comment post redraws. No history."""
    comments = client_thread(approver.request_id)
    version_id = approver.request.version_id
    return {"approver": approver, "review_request": approver.request, "comments": comments,
            "viewer": renders.viewer(version_id, approver.public_id),
            "pins": pins(comments, version_id),
            # Every time on the client's pages is in their zone (portal/local_time.py).
            "zone": approver.contact.client.zone}


def standing(row: Approver, viewer: Approver) -> str:
    """How one approver of a request stands, in the words the client reads ("Waiting for
    you", "After Jane Doe", "Changes requested"), never the stored status."""
    if row.decision is not None:
        label = row.decision.outcome.label
        return label[:1].upper() + label[1:]
    you = row.id == viewer.id
    if row.status == ApproverStatus.INVITED:
        return "Waiting for you" if you else "Deciding now"
    if row.status == ApproverStatus.QUEUED:
        earlier = [a for a in row.request.approvers if a.position < row.position]
        if not earlier:
            return "Waiting for you" if you else "Deciding next"
        before = earlier[-1]
        return f"After {'you' if before.id == viewer.id else before.contact.name}"
    return {RequestStatus.EXPIRED: "Did not decide in time",
            RequestStatus.CANCELLED: "Request withdrawn by the team",
            }.get(row.request.status, "No decision needed")
