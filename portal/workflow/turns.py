"""Whose move it is on a deliverable: ours, the client's, or nobody's."""
from __future__ import annotations

from dataclasses import dataclass

from portal.models import (
    Approver,
    ApproverStatus,
    Deliverable,
    DeliverableState,
    RequestStatus,
    today_utc,
)

S = DeliverableState


@dataclass(frozen=True)
class Turn:
    side: str  # "us", "client", "overdue" or "done"
    label: str


def whose_turn(deliverable: Deliverable) -> Turn:
    owner = deliverable.owner.name
    match deliverable.state:
        case S.DRAFT:
            return Turn("us", f"{owner}: upload and submit for review")
        case S.IN_REVIEW:
            who = deliverable.reviewer.name if deliverable.reviewer else "a colleague"
            return Turn("us", f"Internal review by {who}")
        case S.READY:
            return Turn("us", f"{owner}: deliver to the client")
        case S.CHANGES_REQUESTED:
            return Turn("us", f"{owner}: upload a new version")
        case S.DELIVERED:
            request = deliverable.open_request
            names = ", ".join(a.contact.name for a in request.waiting_on) if request else ""
            label = f"Waiting for {names}" if names else "Waiting for the client"
            if request and request.overdue(today_utc()):
                return Turn("overdue", f"Overdue: {label[0].lower()}{label[1:]}")
            return Turn("client", label)
    if deliverable.state == S.APPROVED_WITH_CONDITIONS:
        return Turn("done", "Approved with conditions")
    return Turn("done", "Approved")


def request_status_for(approver: Approver) -> str:
    """The status line a client sees at the top of their review page."""
    request = approver.request
    if request.status == RequestStatus.OPEN:
        if approver.status == ApproverStatus.INVITED:
            return "Waiting for your decision"
        waiting = ", ".join(a.contact.name for a in request.waiting_on)
        if approver.status == ApproverStatus.QUEUED:
            return f"Waiting for {waiting} to decide first" if waiting else "Not your turn yet"
        return f"Your decision is recorded. Waiting for {waiting}" if waiting else \
            "Your decision is recorded"
    return {
        RequestStatus.APPROVED: "Approved by everyone",
        RequestStatus.APPROVED_WITH_CONDITIONS: "Approved by everyone, with conditions",
        RequestStatus.CHANGES_REQUESTED: "Changes requested",
        RequestStatus.EXPIRED: "This request expired without a decision",
        RequestStatus.CANCELLED: "This request was withdrawn by the team",
    }[request.status]
