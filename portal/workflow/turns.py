"""Whose move it is on a deliverable: ours, the client's, or nobody's."""
from __future__ import annotations

from dataclasses import dataclass

from portal.models import Deliverable, DeliverableState

S = DeliverableState


@dataclass(frozen=True)
class Turn:
    side: str  # "us", "client" or "done"
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
            return Turn("client", f"Waiting for {names}" if names else "Waiting for the client")
    return Turn("done", "Approved")

