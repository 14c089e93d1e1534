"""What an old review link says once its version has been replaced.

A request that ended with changes requested, or was cancelled, or has a newer request
after it, is no longer where the client should be. If the same contact is asked again,
their place on the newest request is where to go ("A newer version is waiting for you");
if not, the team is working on changes. A link staff revoked learns nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from portal.models import APPROVED_STATES, Approver, RequestStatus
from portal.workflow.on_screen import current_approver, latest_request

ENDED_BY_CHANGES = {RequestStatus.CHANGES_REQUESTED, RequestStatus.CANCELLED}


@dataclass(frozen=True)
class Replaced:
    # "waiting": a newer version waits for this contact's decision; "current": they are on
    # the newer request but have nothing to do now; "working": they are not asked again.
    kind: str
    newer: Approver | None = None


def replaced(approver: Approver) -> Replaced | None:
    """Where this approver's request stands against newer work; None when it is still the
    one to look at (open, or the last word on the deliverable)."""
    request = approver.request
    if request.status == RequestStatus.OPEN or approver.link_revoked_at is not None:
        return None
    mine = current_approver(approver)
    if mine is not None:
        return Replaced("waiting" if mine.awaiting_decision else "current", mine)
    deliverable = request.version.deliverable
    newest = latest_request(deliverable.id)
    if newest.id == request.id and request.status not in ENDED_BY_CHANGES:
        return None  # approved or expired, and nothing came after it
    if deliverable.state in APPROVED_STATES and newest.id != request.id:
        return None  # others approved a later version: nothing is being worked on
    return Replaced("working")
