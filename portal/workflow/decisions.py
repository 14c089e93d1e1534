"""The client's move: an explicit decision on a named version, and what it sets off."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from portal import audit
from portal.database import lock_row
from portal.errors import DomainError, IllegalTransition, InvalidInput
from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    Decision,
    DecisionOnBehalf,
    IdentityCheck,
    Outcome,
    Policy,
    RequestStatus,
    ReviewRequest,
    utcnow,
)
from portal.workflow import step_up
from portal.workflow.closing import DECIDED, close_request
from portal.workflow.conditions import add_conditions, checked_items
from portal.workflow.invitations import invite
from portal.workflow.on_screen import check_on_screen
from portal.workflow.policies import settled
from portal.workflow.turns import CLOSED_BY_DECISIONS, closed_by

MAX_TEXT = 5000


class AlreadyDecided(DomainError):
    pass


def _checked(outcome: Outcome, text: str,
             conditions: Sequence[str] | None) -> tuple[str, list[str]]:
    """The decision's text (a note beside conditions) and its conditions, checked."""
    text = (text or "").strip()
    if len(text) > MAX_TEXT:
        raise InvalidInput(_("Please keep it under %(max)s characters.", max=MAX_TEXT))
    items: list[str] = []
    if outcome == Outcome.APPROVED_WITH_CONDITIONS:
        if conditions is None:  # one text, as before: it is the one condition
            items, text = checked_items([" ".join(text.split())]), ""
        else:
            items = checked_items(" ".join((c or "").split()) for c in conditions)
    elif conditions and any(c and c.strip() for c in conditions):
        raise InvalidInput(_("Only an approval with conditions takes conditions."))
    if outcome == Outcome.REJECTED and not text:
        raise InvalidInput(_("Write what should change, so the team knows what to do."))
    return text, items


def record_decision(
    approver: Approver, outcome: Outcome, text: str = "",
    *, seen_sha256: str | None, conditions: Sequence[str] | None = None, ip: str = "",
    user_agent: str = "", now: datetime | None = None,
    on_behalf: DecisionOnBehalf | None = None,
) -> Decision:
    """Record one approver's explicit decision on the version they saw (its SHA-256) and
    move the request on.

    An approval with conditions names them as separate items (`conditions`, each tracked
    until staff resolve it; `text` is then an optional note). Given no list, its `text` is
    the one condition, as before items existed. Changes requested (Outcome.REJECTED) take
    what should change as `text`; whether that is in scope is staff's call, later
    (workflow/classification.py)."""
    # Serialise decisions on one request, so the last approval is seen exactly once.
    request = lock_row(ReviewRequest, approver.request_id)
    db.session.refresh(approver)
    check_on_screen(request, approver.contact, seen_sha256)
    if approver.status in DECIDED:
        raise AlreadyDecided(_("Your decision is already recorded and cannot be changed."))
    if request.status != RequestStatus.OPEN or approver.status == ApproverStatus.WITHDRAWN:
        raise IllegalTransition(closed_message(request))
    if approver.status == ApproverStatus.DELEGATED:  # handed over (workflow/delegation.py)
        raise IllegalTransition(_("You handed this request over to a colleague, who decides "
                                  "in your place. Nothing was recorded."))
    if approver.status == ApproverStatus.QUEUED:
        raise IllegalTransition(_("It is not your turn yet: an earlier approver decides first."))
    text, items = _checked(outcome, text, conditions)
    now = now or utcnow()
    identity = IdentityCheck.LINK
    if on_behalf is not None:  # staff record what the contact said (workflow/on_behalf.py)
        identity = IdentityCheck.ON_BEHALF
    elif request.require_code:
        step_up.use_confirmation(approver, now)
        identity = IdentityCheck.EMAIL_CODE
    version = request.version
    decision = Decision(
        approver_id=approver.id, request_id=request.id, version_id=version.id,
        version_sha256=version.sha256, outcome=outcome, text=text, at=now,
        ip=ip[:64], user_agent=user_agent[:512], identity=identity,
    )
    add_conditions(decision, items)
    if on_behalf is not None:
        on_behalf.decision = decision
    try:
        with db.session.begin_nested():
            db.session.add(decision)
    except IntegrityError as exc:  # a concurrent post won the race
        raise AlreadyDecided(_("Your decision is already recorded and cannot be changed.")) from exc
    approver.status = ApproverStatus(outcome.value)
    approver.next_reminder_at = None
    version.deliverable.last_activity_at = now
    audit.record(on_behalf.recorded_by if on_behalf else approver.contact,
                 f"decision.{outcome.value}", decision,
                 deliverable=version.deliverable, version=version.number,
                 sha256=version.sha256, text=text, ip=decision.ip, identity=identity.value,
                 **({"conditions": items} if items else {}),
                 **({"on_behalf": on_behalf.facts} if on_behalf else {}))
    _advance(request, now)
    return decision


def _advance(request: ReviewRequest, now: datetime) -> None:
    """After a decision: close the request if its policy's rule says so (policies.settle),
    else invite the next in line (sequential)."""
    ending = settled(request)
    if ending is not None:
        close_request(request, ending, now)
        return
    undecided = [a for a in request.approvers if a.status not in DECIDED]
    if undecided and request.policy == Policy.SEQUENTIAL and not request.waiting_on:
        invite(undecided[0], now)


def closed_message(request: ReviewRequest) -> str:
    """Why a decision on a closed request is refused (nothing is recorded)."""
    if request.status in CLOSED_BY_DECISIONS:
        return _("This request is closed (%(how)s), so your decision is no longer needed. "
                 "Nothing was recorded.", how=closed_by(request))
    return _("This request is %(status)s; it takes no more decisions.",
             status=request.status.label)
