"""Client-side transitions: decisions, and closing a request."""
from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from portal import audit, mail, queue, webhooks
from portal.directory import require_staff
from portal.errors import DomainError, IllegalTransition, InvalidInput
from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    Decision,
    DeliverableState,
    Outcome,
    Policy,
    RejectionScope,
    RequestStatus,
    ReviewRequest,
    User,
    utcnow,
)
from portal.rows import lock_row
from portal.workflow.lifecycle import invite

MAX_TEXT = 5000
ISSUE_CERTIFICATE_JOB = "jobs.certificates.issue"
DECIDED = {ApproverStatus.APPROVED, ApproverStatus.APPROVED_WITH_CONDITIONS,
           ApproverStatus.REJECTED}


class AlreadyDecided(DomainError):
    pass


def _lock(request_id: int) -> ReviewRequest:
    """Serialise decisions on one request, so the last approval is seen exactly once."""
    return lock_row(ReviewRequest, request_id)


def _checked_text(outcome: Outcome, text: str, scope: RejectionScope | None) -> str:
    text = (text or "").strip()
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"Please keep it under {MAX_TEXT} characters.")
    if outcome == Outcome.APPROVED_WITH_CONDITIONS and not text:
        raise InvalidInput("Write the conditions of your approval.")
    if outcome == Outcome.REJECTED:
        if not text:
            raise InvalidInput("Write the reason for rejecting, so the team knows what to change.")
        if scope is None:
            raise InvalidInput("Say whether the change is within the original scope or a change "
                               "request.")
    return text


def record_decision(
    approver: Approver, outcome: Outcome, text: str = "", scope: RejectionScope | None = None,
    *, ip: str = "", user_agent: str = "",
) -> Decision:
    """Record one approver's explicit decision and move the request on."""
    request = _lock(approver.request_id)
    db.session.refresh(approver)
    if approver.status in DECIDED:
        raise AlreadyDecided("Your decision is already recorded and cannot be changed.")
    if request.status != RequestStatus.OPEN or approver.status == ApproverStatus.WITHDRAWN:
        raise IllegalTransition(f"This request is {request.status.label}; it takes no more "
                                "decisions.")
    if approver.status == ApproverStatus.QUEUED:
        raise IllegalTransition("It is not your turn yet: an earlier approver decides first.")
    text = _checked_text(outcome, text, scope if outcome == Outcome.REJECTED else None)
    version = request.version
    decision = Decision(
        approver_id=approver.id, request_id=request.id, version_id=version.id,
        version_sha256=version.sha256, outcome=outcome, text=text,
        scope=scope if outcome == Outcome.REJECTED else None,
        ip=ip[:64], user_agent=user_agent[:512],
    )
    try:
        with db.session.begin_nested():
            db.session.add(decision)
    except IntegrityError as exc:  # a concurrent post won the race
        raise AlreadyDecided("Your decision is already recorded and cannot be changed.") from exc
    approver.status = ApproverStatus(outcome.value)
    approver.next_reminder_at = None
    deliverable = version.deliverable
    deliverable.last_activity_at = utcnow()
    audit.record(approver.contact, f"decision.{outcome.value}", decision, deliverable=deliverable,
                 version=version.number, sha256=version.sha256, text=text,
                 scope=decision.scope.value if decision.scope else None, ip=decision.ip)
    _notify_owner(decision)
    if outcome == Outcome.REJECTED:
        _close(request, RequestStatus.CHANGES_REQUESTED)
        deliverable.state = DeliverableState.CHANGES_REQUESTED
    else:
        _advance(request)
    webhooks.emit("decision.recorded", {
        "decision": {"id": decision.id, "outcome": outcome.value, "text": text,
                     "scope": decision.scope.value if decision.scope else None,
                     "at": decision.at.isoformat() if decision.at else None,
                     "approver": {"name": approver.contact.name, "email": approver.contact.email}},
        **webhooks.request_data(request)})
    if outcome == Outcome.REJECTED:
        webhooks.emit("request.changes_requested", webhooks.request_data(request))
    elif request.status != RequestStatus.OPEN:
        webhooks.emit("request.approved", webhooks.request_data(request))
    return decision


def _advance(request: ReviewRequest) -> None:
    undecided = [a for a in request.approvers if a.status not in DECIDED]
    if undecided:
        if request.policy == Policy.SEQUENTIAL and not request.waiting_on:
            invite(undecided[0])
        return
    conditional = any(a.status == ApproverStatus.APPROVED_WITH_CONDITIONS
                      for a in request.approvers)
    status = RequestStatus.APPROVED_WITH_CONDITIONS if conditional else RequestStatus.APPROVED
    _close(request, status)
    version = request.version
    version.locked_at = utcnow()
    version.deliverable.state = DeliverableState(status.value)
    audit.record(None, f"request.{status.value}", request, deliverable=version.deliverable,
                 version=version.number, sha256=version.sha256)
    queue.after_commit(ISSUE_CERTIFICATE_JOB, request.id, job_id=f"certificate-{request.id}")


def _close(request: ReviewRequest, status: RequestStatus, *, revoke_links: bool = False) -> None:
    """Undecided approvers are withdrawn: their links still show the outcome, but decide
    nothing. A cancellation also revokes the links outright."""
    request.status = status
    request.closed_at = utcnow()
    for approver in request.approvers:
        approver.next_reminder_at = None
        if approver.status not in DECIDED:
            approver.status = ApproverStatus.WITHDRAWN
        if revoke_links:
            approver.link_generation += 1


def _notify_owner(decision: Decision) -> None:
    approver = decision.approver
    deliverable = approver.request.version.deliverable
    owner = deliverable.owner
    mail.compose(
        to_addr=owner.email, to_name=owner.name, template="decision_recorded",
        idempotency_key=f"decision:{decision.id}", deliverable_id=deliverable.id,
        deliverable=deliverable, decision=decision, approver=approver,
    )


def cancel_request(actor: User, request: ReviewRequest) -> None:
    """Withdraw an open request; every link it issued stops working."""
    require_staff(actor)
    request = _lock(request.id)
    if request.status != RequestStatus.OPEN:
        raise IllegalTransition(f"This request is already {request.status.label}.")
    _close(request, RequestStatus.CANCELLED, revoke_links=True)
    deliverable = request.version.deliverable
    deliverable.state = DeliverableState.READY
    deliverable.last_activity_at = utcnow()
    audit.record(actor, "request.cancelled", request, deliverable=deliverable,
                 version=request.version.number)
