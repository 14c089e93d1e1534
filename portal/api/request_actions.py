"""/api/v1: staff's moves on a request out with the client (on the requests blueprint):
remind, resend or revoke an approver's link, cancel. Each calls the function the staff
page's button calls (portal/views/review_requests.py), so the same emails and events follow."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort

from portal import workflow
from portal.api.auth import acting_user
from portal.api.request_schemas import (
    ID,
    ApproverSchema,
    RequestSchema,
    approver_facts,
    request_facts,
)
from portal.api.requests import blp, problems, request_or_404
from portal.api.writes import writes
from portal.extensions import db
from portal.models import Approver, ReviewRequest, User
from portal.workflow.invitations import resend_link, revoke_link
from portal.workflow.reminders import remind_everyone_waiting, send_reminder_now

APPROVER = f"/requests/<{ID}:request_id>/approvers/<{ID}:approver_id>"


def _approver_of(request_id: int, approver_id: int) -> Approver:
    approver = db.get_or_404(Approver, approver_id)
    if approver.request_id != request_id:
        abort(404)
    return approver


def _on_approver(request_id: int, approver_id: int,
                 act: Callable[[User, Approver], object]) -> dict[str, Any]:
    approver = _approver_of(request_id, approver_id)
    act(acting_user(), approver)
    db.session.flush()
    db.session.refresh(approver)  # a reminder writes its row in bulk, past the session
    return approver_facts(approver)


@blp.post(f"/requests/<{ID}:request_id>/remind")
@writes
@blp.response(200, RequestSchema)
@problems(401, 403, 404, 409)
def remind_request(request_id: int) -> dict[str, Any]:
    """Remind everyone whose turn it is

    The staff page's "Send reminder now", for each approver waiting to decide whose link
    is not revoked; each counts as one of their reminders and is emailed."""
    request: ReviewRequest = request_or_404(request_id)
    remind_everyone_waiting(acting_user(), request)
    db.session.flush()
    db.session.refresh(request)
    return request_facts(request)


@blp.post(f"{APPROVER}/remind")
@writes
@blp.response(200, ApproverSchema)
@problems(401, 403, 404, 409)
def remind_approver(request_id: int, approver_id: int) -> dict[str, Any]:
    """Remind one approver now

    The staff page's "Send reminder now": emailed, and counted as one of their reminders.
    Refused when it is not their turn or their link is revoked (resend it first)."""
    return _on_approver(request_id, approver_id, send_reminder_now)


@blp.post(f"{APPROVER}/resend")
@writes
@blp.response(200, ApproverSchema)
@problems(401, 403, 404, 409)
def resend_approver_link(request_id: int, approver_id: int) -> dict[str, Any]:
    """Resend an approver's link

    A fresh link by email; every older link of theirs stops working. After a revocation
    it restarts the reminders."""
    return _on_approver(request_id, approver_id, resend_link)


@blp.post(f"{APPROVER}/revoke")
@writes
@blp.response(200, ApproverSchema)
@problems(401, 403, 404, 409)
def revoke_approver_link(request_id: int, approver_id: int) -> dict[str, Any]:
    """Revoke an approver's link

    Every link of theirs stops working at once, and no reminder sends a new one until
    staff resend it."""
    return _on_approver(request_id, approver_id, revoke_link)


@blp.post(f"/requests/<{ID}:request_id>/cancel")
@writes
@blp.response(200, RequestSchema)
@problems(401, 403, 404, 409)
def cancel_request(request_id: int) -> dict[str, Any]:
    """Cancel a request

    Withdrawn: every link it issued stops working, the approvers' reminders stop, and the
    deliverable is ready to go out again."""
    request = request_or_404(request_id)
    workflow.cancel_request(acting_user(), request)
    db.session.flush()
    return request_facts(request)
