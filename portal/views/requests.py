"""Staff actions on a request that is out with the client: links and the thread."""
from __future__ import annotations

from flask import Blueprint, request

from portal import workflow
from portal.models import Approver, ReviewRequest
from portal.views.access import acting_user, get_or_404, staff_only
from portal.views.staff import act_on_deliverable
from portal.workflow.access import resend_link, revoke_link
from portal.workflow.comments import post_comment

bp = Blueprint("requests", __name__)


def _deliverable_id(review_request: ReviewRequest) -> int:
    return review_request.version.deliverable_id


@bp.post("/requests/<int:request_id>/cancel")
@staff_only
def cancel(request_id: int):
    review_request = get_or_404(ReviewRequest, request_id)
    return act_on_deliverable(_deliverable_id(review_request),
                              lambda _d: workflow.cancel_request(acting_user(), review_request),
                              "Request cancelled; its links no longer work.")


@bp.post("/requests/<int:request_id>/comments")
@staff_only
def comment(request_id: int):
    review_request = get_or_404(ReviewRequest, request_id)
    internal = bool(request.form.get("internal"))
    return act_on_deliverable(
        _deliverable_id(review_request),
        lambda _d: post_comment(acting_user(), review_request, request.form.get("body", ""),
                                internal=internal),
        "Internal note added." if internal else "Reply posted; the client sees it.")


@bp.post("/approvers/<int:approver_id>/resend")
@staff_only
def resend(approver_id: int):
    approver = get_or_404(Approver, approver_id)
    return act_on_deliverable(_deliverable_id(approver.request),
                              lambda _d: resend_link(acting_user(), approver),
                              f"A new link is on its way to {approver.contact.name}; older "
                              "links no longer work.")


@bp.post("/approvers/<int:approver_id>/revoke")
@staff_only
def revoke(approver_id: int):
    approver = get_or_404(Approver, approver_id)
    return act_on_deliverable(_deliverable_id(approver.request),
                              lambda _d: revoke_link(acting_user(), approver),
                              f"{approver.contact.name}'s link no longer works.")
