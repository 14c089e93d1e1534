"""Every way a request ends: approved (as its policy counts approvals, policies.py), changes
requested, cancelled, expired.

`close_request` is the only code that closes one, so each ending withdraws the same
approvers, stops the same reminders, moves the deliverable on and records one event.
"""
from __future__ import annotations

from datetime import datetime

from portal import audit
from portal.certificates import issue_after_commit
from portal.database import lock_row
from portal.errors import IllegalTransition
from portal.models import (
    APPROVED_STATUSES,
    ApproverStatus,
    DeliverableState,
    RequestStatus,
    ReviewRequest,
    User,
    utcnow,
)
from portal.permissions import require_staff
from portal.workflow.policies import recorded_words

DECIDED = frozenset({ApproverStatus.APPROVED, ApproverStatus.APPROVED_WITH_CONDITIONS,
                     ApproverStatus.REJECTED})
# Where the deliverable goes when its request ends this way.
NEXT_STATE = {
    RequestStatus.APPROVED: DeliverableState.APPROVED,
    RequestStatus.APPROVED_WITH_CONDITIONS: DeliverableState.APPROVED_WITH_CONDITIONS,
    RequestStatus.CHANGES_REQUESTED: DeliverableState.CHANGES_REQUESTED,
    RequestStatus.CANCELLED: DeliverableState.READY,  # reviewed, ready to go out again
    RequestStatus.EXPIRED: DeliverableState.READY,
}


def close_request(request: ReviewRequest, status: RequestStatus, now: datetime,
                  actor: User | None = None) -> None:
    """End an open request. Undecided approvers are withdrawn (an early close under "any
    one of" or "K of N" included) and their reminders stop: their links still show the
    outcome but decide nothing, and notifications/reactions.py tells those who were asked
    that their decision is no longer needed; a cancellation also revokes the links."""
    if request.status != RequestStatus.OPEN:
        raise IllegalTransition(f"This request is already {request.status.label}.")
    request.status = status
    request.closed_at = now
    for approver in request.approvers:
        approver.next_reminder_at = None
        if approver.status not in DECIDED:
            approver.status = ApproverStatus.WITHDRAWN
        if status == RequestStatus.CANCELLED:
            approver.link_generation += 1
    version = request.version
    deliverable = version.deliverable
    deliverable.state = NEXT_STATE[status]
    deliverable.last_activity_at = now
    if status in APPROVED_STATUSES:
        version.locked_at = now
        issue_after_commit(request.id)
    # The policy in words, so the trail says what "approved" meant ("Any one of 3 …").
    audit.record(actor, f"request.{status.value}", request, deliverable=deliverable,
                 version=version.number, sha256=version.sha256,
                 policy=recorded_words(request))


def cancel_request(actor: User, request: ReviewRequest, now: datetime | None = None) -> None:
    """Withdraw an open request; every link it issued stops working."""
    require_staff(actor)
    request = lock_row(ReviewRequest, request.id)
    close_request(request, RequestStatus.CANCELLED, now or utcnow(), actor)


def expire_request(request: ReviewRequest, now: datetime) -> None:
    """Every link ran out undecided: the request is expired, never approved."""
    close_request(request, RequestStatus.EXPIRED, now)
