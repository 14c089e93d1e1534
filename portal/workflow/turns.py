"""Whose move it is on a deliverable: ours, the client's, or nobody's."""
from __future__ import annotations

from dataclasses import dataclass

from portal.models import (
    APPROVED_STATUSES,
    Approver,
    ApproverStatus,
    Deliverable,
    DeliverableState,
    RequestStatus,
    ReviewRequest,
    today_utc,
)
from portal.workflow.policies import for_the_client, waiting_for

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
            waiting = waiting_for(request) if request else ""
            label = f"Waiting for {waiting}" if waiting else "Waiting for the client"
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
        meaning = for_the_client(request)
        if approver.status == ApproverStatus.INVITED:
            return f"Waiting for your decision. {meaning}" if meaning else \
                "Waiting for your decision"
        waiting = waiting_for(request)
        if approver.status == ApproverStatus.QUEUED:
            return f"Waiting for {waiting} to decide first" if waiting else "Not your turn yet"
        return f"Your decision is recorded. Waiting for {waiting}" if waiting else \
            "Your decision is recorded"
    if request.status in CLOSED_BY_DECISIONS and approver.status == ApproverStatus.WITHDRAWN:
        return f"{closed_by(request)}: your decision is no longer needed"
    if request.status in APPROVED_STATUSES and not everyone_approved(request):
        return closed_by(request)
    return {
        RequestStatus.APPROVED: "Approved by everyone",
        RequestStatus.APPROVED_WITH_CONDITIONS: "Approved by everyone, with conditions",
        RequestStatus.CHANGES_REQUESTED: "Changes requested",
        RequestStatus.EXPIRED: "This request expired without a decision",
        RequestStatus.CANCELLED: "This request was withdrawn by the team",
    }[request.status]


CLOSED_BY_DECISIONS = frozenset({*APPROVED_STATUSES, RequestStatus.CHANGES_REQUESTED})


def everyone_approved(request: ReviewRequest) -> bool:
    return all(a.status in (ApproverStatus.APPROVED, ApproverStatus.APPROVED_WITH_CONDITIONS)
               for a in request.approvers)


def closed_by(request: ReviewRequest) -> str:
    """How a request closed by decisions ended and whose decisions ended it: "Approved by
    Jane Doe", "Approved by Jane Doe and Ann Lee, with conditions", "Changes requested by
    John Roe"."""
    if request.status in APPROVED_STATUSES:
        wanted = {ApproverStatus.APPROVED, ApproverStatus.APPROVED_WITH_CONDITIONS}
        said = "Approved"
    else:
        wanted, said = {ApproverStatus.REJECTED}, "Changes requested"
    names = [a.contact.name for a in request.approvers if a.status in wanted]
    who = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)
    line = f"{said} by {who}" if who else said
    return line + (", with conditions" if request.status ==
                   RequestStatus.APPROVED_WITH_CONDITIONS else "")
