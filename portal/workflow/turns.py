"""Whose move it is on a deliverable: ours, the client's, or nobody's."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _

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
            return Turn("us", _("%(owner)s: upload and submit for review", owner=owner))
        case S.IN_REVIEW:
            if deliverable.reviewer:
                return Turn("us", _("Internal review by %(name)s",
                                    name=deliverable.reviewer.name))
            return Turn("us", _("Internal review by a colleague"))
        case S.READY:
            return Turn("us", _("%(owner)s: deliver to the client", owner=owner))
        case S.CHANGES_REQUESTED:
            return Turn("us", _("%(owner)s: upload a new version", owner=owner))
        case S.DELIVERED:
            request = deliverable.open_request
            waiting = waiting_for(request) if request else ""
            if request and request.overdue(today_utc()):
                return Turn("overdue", _("Overdue: waiting for %(who)s", who=waiting)
                            if waiting else _("Overdue: waiting for the client"))
            return Turn("client", _("Waiting for %(who)s", who=waiting) if waiting
                        else _("Waiting for the client"))
    if deliverable.state == S.APPROVED_WITH_CONDITIONS:
        return Turn("done", _("Approved with conditions"))
    return Turn("done", _("Approved"))


def request_status_for(approver: Approver) -> str:
    """The status line a client sees at the top of their review page."""
    request = approver.request
    if request.status == RequestStatus.OPEN:
        meaning = for_the_client(request)
        if approver.status == ApproverStatus.INVITED:
            return _("Waiting for your decision. %(meaning)s", meaning=meaning) if meaning \
                else _("Waiting for your decision")
        waiting = waiting_for(request)
        if approver.status == ApproverStatus.QUEUED:
            return _("Waiting for %(who)s to decide first", who=waiting) if waiting \
                else _("Not your turn yet")
        return _("Your decision is recorded. Waiting for %(who)s", who=waiting) if waiting \
            else _("Your decision is recorded")
    if request.status in CLOSED_BY_DECISIONS and approver.status == ApproverStatus.WITHDRAWN:
        return _("%(closed)s: your decision is no longer needed", closed=closed_by(request))
    if request.status in APPROVED_STATUSES and not everyone_approved(request):
        return closed_by(request)
    return {
        RequestStatus.APPROVED: _("Approved by everyone"),
        RequestStatus.APPROVED_WITH_CONDITIONS: _("Approved by everyone, with conditions"),
        RequestStatus.CHANGES_REQUESTED: _("Changes requested"),
        RequestStatus.EXPIRED: _("This request expired without a decision"),
        RequestStatus.CANCELLED: _("This request was withdrawn by the team"),
    }[request.status]


CLOSED_BY_DECISIONS = frozenset({*APPROVED_STATUSES, RequestStatus.CHANGES_REQUESTED})


def everyone_approved(request: ReviewRequest) -> bool:
    return all(a.status in (ApproverStatus.APPROVED, ApproverStatus.APPROVED_WITH_CONDITIONS)
               for a in request.approvers)


def closed_by(request: ReviewRequest) -> str:
    """How a request closed by decisions ended and whose decisions ended it: "Approved by
    Jane Doe", "Approved by Jane Doe and Ann Lee, with conditions", "Changes requested by
    John Roe"."""
    approved = request.status in APPROVED_STATUSES
    wanted = ({ApproverStatus.APPROVED, ApproverStatus.APPROVED_WITH_CONDITIONS} if approved
              else {ApproverStatus.REJECTED})
    names = [a.contact.name for a in request.approvers if a.status in wanted]
    who = (_("%(names)s and %(last)s", names=", ".join(names[:-1]), last=names[-1])
           if len(names) > 1 else "".join(names))
    if request.status == RequestStatus.APPROVED_WITH_CONDITIONS:
        return _("Approved by %(who)s, with conditions", who=who) if who \
            else _("Approved, with conditions")
    if approved:
        return _("Approved by %(who)s", who=who) if who else _("Approved")
    return _("Changes requested by %(who)s", who=who) if who else _("Changes requested")
