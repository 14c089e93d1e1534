"""Staff actions on a request: links and the thread while it is out with the client, and
afterwards the conditions of its approvals and the client's points across versions."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from portal import workflow
from portal.errors import InvalidInput
from portal.extensions import db
from portal.models import (
    Approver,
    Comment,
    Condition,
    ConditionStatus,
    OutboxMessage,
    PointStatus,
    ReviewRequest,
    User,
    Version,
)
from portal.notifications import outbox
from portal.views.common import act_on_deliverable, acting_user, get_or_404, staff_only
from portal.workflow.comments import post_comment
from portal.workflow.conditions import resolve_condition as resolve
from portal.workflow.feedback import resolve_point as resolve_client_point
from portal.workflow.invitations import resend_link, revoke_link
from portal.workflow.pins import pin_from_form
from portal.workflow.reminders import send_reminder_now

bp = Blueprint("review_requests", __name__)


def _deliverable_id(review_request: ReviewRequest) -> int:
    return review_request.version.deliverable_id


@bp.post("/requests/<int:request_id>/cancel")
@staff_only
def cancel(request_id: int):
    review_request = get_or_404(ReviewRequest, request_id)
    return act_on_deliverable(_deliverable_id(review_request),
                              lambda _d: workflow.cancel_request(acting_user(), review_request),
                              _("Request cancelled; its links no longer work."))


@bp.post("/requests/<int:request_id>/comments")
@staff_only
def comment(request_id: int):
    review_request = get_or_404(ReviewRequest, request_id)
    internal = bool(request.form.get("internal"))
    return act_on_deliverable(
        _deliverable_id(review_request),
        lambda _d: post_comment(acting_user(), review_request, request.form.get("body", ""),
                                internal=internal, pin=pin_from_form(request.form)),
        _("Internal note added.") if internal else _("Reply posted; the client sees it."))


@bp.post("/outbox/<int:message_id>/retry")
@staff_only
def retry_message(message_id: int):
    message = get_or_404(OutboxMessage, message_id)
    if message.deliverable_id is None:
        outbox.retry_failed(acting_user(), message)
        db.session.commit()
        flash(_("Retrying the email to %(address)s.", address=message.to_addr))
        return redirect(url_for("review_requests.delivery_problems"))
    return act_on_deliverable(message.deliverable_id,
                              lambda _d: outbox.retry_failed(acting_user(), message),
                              _("Retrying the email to %(address)s.", address=message.to_addr))


@bp.get("/delivery-problems")
@login_required
def delivery_problems():
    return render_template("staff/delivery_problems.html", messages=outbox.problems())


def _act_on_approver(approver_id: int, act: Callable[[User, Approver], object],
                     done: Callable[[str], str]) -> Any:
    """One of staff's moves on an approver's link, answered with the deliverable page;
    `done` says it happened, given the approver's name."""
    approver = get_or_404(Approver, approver_id)
    return act_on_deliverable(_deliverable_id(approver.request),
                              lambda _d: act(acting_user(), approver),
                              done(approver.contact.name))


@bp.post("/approvers/<int:approver_id>/resend")
@staff_only
def resend(approver_id: int):
    return _act_on_approver(approver_id, resend_link, lambda name: _(
        "A new link is on its way to %(name)s; older links no longer work.", name=name))


@bp.post("/approvers/<int:approver_id>/remind")
@staff_only
def remind(approver_id: int):
    return _act_on_approver(approver_id, send_reminder_now,
                            lambda name: _("Reminder sent to %(name)s.", name=name))


@bp.post("/approvers/<int:approver_id>/revoke")
@staff_only
def revoke(approver_id: int):
    return _act_on_approver(approver_id, revoke_link,
                            lambda name: _("%(name)s's link no longer works.", name=name))


def _condition_done(status: ConditionStatus | None, n: int) -> str:
    if status == ConditionStatus.MET:
        return _("Condition %(n)s is marked met.", n=n)
    if status == ConditionStatus.WONT_DO:
        return _("Condition %(n)s is marked won't do; the client sees your reason.", n=n)
    if status == ConditionStatus.OPEN:
        return _("Condition %(n)s is open again.", n=n)
    return ""


@bp.post("/conditions/<int:condition_id>")
@staff_only
def resolve_condition(condition_id: int):
    """Mark a condition met in a later version, won't do (with a reason), or reopen it."""
    condition = get_or_404(Condition, condition_id)
    raw, version_id = request.form.get("status", ""), request.form.get("version_id", type=int)
    status = ConditionStatus(raw) if raw in {s.value for s in ConditionStatus} else None

    def act(_deliverable: object) -> None:
        if status is None:
            raise InvalidInput(_("Choose met, won't do, or reopen."))
        version = db.session.get(Version, version_id) if version_id else None
        resolve(acting_user(), condition, status, version, request.form.get("note", ""))
    decided = db.session.get(Version, condition.decision.version_id)
    return act_on_deliverable(decided.deliverable_id, act,
                              _condition_done(status, condition.position))


def _point_done(status: PointStatus | None) -> str:
    if status == PointStatus.ADDRESSED:
        return _("The client's point is marked addressed.")
    if status == PointStatus.WONT_CHANGE:
        return _("The client's point is marked won't change; they see your reason.")
    if status == PointStatus.OPEN:
        return _("The client's point is open again.")
    return ""


@bp.post("/points/<int:comment_id>")
@staff_only
def resolve_point(comment_id: int):
    """Mark a client's point addressed in a later version, won't change (with a reason),
    or reopen it."""
    comment = get_or_404(Comment, comment_id)
    raw, version_id = request.form.get("status", ""), request.form.get("version_id", type=int)
    status = PointStatus(raw) if raw in {s.value for s in PointStatus} else None

    def act(_deliverable: object) -> None:
        if status is None:
            raise InvalidInput(_("Choose addressed, won't change, or reopen."))
        version = db.session.get(Version, version_id) if version_id else None
        resolve_client_point(acting_user(), comment, status, version,
                             request.form.get("note", ""))
    return act_on_deliverable(_deliverable_id(comment.request), act, _point_done(status))
