"""/api/v1 requests: the shapes of a delivery, a request, its approvers and decisions, and
how each is read from the models (the words come from the workflow, as on the pages)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import Schema, fields, validate

from portal.api.common import ID, ROW_ID  # noqa: F401  (ID: the request modules' routes)
from portal.models import (
    Approver,
    ApproverStatus,
    Decision,
    IdentityCheck,
    Outcome,
    Policy,
    RejectionScope,
    RequestStatus,
    ReviewRequest,
    today_utc,
    utcnow,
)
from portal.models.conditions import ConditionStatus
from portal.models.on_behalf import OnBehalfChannel
from portal.workflow.links import link_state
from portal.workflow.policies import describe
from portal.workflow.turns import whose_turn

LINK_STATES = ["not_sent", "valid", "expired", "revoked"]


def _values(choice: type) -> list[str]:
    return [member.value for member in choice]


# --- delivery (input) --------------------------------------------------------------------

class DeliveryReminderSchema(Schema):
    """The ranges the staff form offers (the domain checks them too)."""
    first_after_days = fields.Integer(required=True, validate=validate.Range(0, 30), metadata={
        "description": "business days before the first reminder"})
    every_days = fields.Integer(required=True, validate=validate.Range(1, 30), metadata={
        "description": "business days between reminders"})
    max_reminders = fields.Integer(required=True, validate=validate.Range(0, 20), metadata={
        "description": "at most this many reminders"})


class DeliverySchema(Schema):
    approvers = fields.List(fields.Integer(validate=ROW_ID), load_default=list, metadata={
        "description": "contact ids of the client's approvers, in the order they decide "
                       "(the order counts for a sequential policy)"})
    policy = fields.String(load_default=Policy.PARALLEL.value,
                           validate=validate.OneOf(_values(Policy)), metadata={
                               "description": "parallel: everyone, at once; sequential: "
                                              "everyone, in turn; any_one: the first approval "
                                              "decides; at_least: required_approvals decide"})
    required_approvals = fields.Integer(
        allow_none=True, load_default=None, validate=validate.Range(1, 99), metadata={
            "description": "K, for the at_least policy only (1 to the number of approvers)"})
    changes_end_request = fields.Boolean(load_default=True, metadata={
        "description": "any_one only: a request for changes ends the request (true) or "
                       "waits for another approver to approve (false)"})
    due_date = fields.Date(allow_none=True, load_default=None, metadata={
        "description": "when the decision is due; a day in the future"})
    reminders = fields.Nested(DeliveryReminderSchema, allow_none=True, load_default=None,
                              metadata={"description": "null: the portal's default policy"})
    require_code = fields.Boolean(allow_none=True, load_default=None, metadata={
        "description": "ask for a code emailed to the approver before they decide; "
                       "null: the client's default"})
    observers = fields.List(fields.Integer(validate=ROW_ID), load_default=list, metadata={
        "description": "contact ids kept informed (they view, never decide)"})
    observers_may_comment = fields.Boolean(load_default=False)


# --- reading -----------------------------------------------------------------------------

class RequestTurnSchema(Schema):
    side = fields.String(required=True,
                         metadata={"enum": ["us", "client", "overdue", "done"]})
    label = fields.String(required=True)


class RequestReminderPolicySchema(Schema):
    first_after_days = fields.Integer(required=True)
    every_days = fields.Integer(required=True)
    max_reminders = fields.Integer(required=True)


class ApproverSchema(Schema):
    id = fields.Integer(required=True)
    contact_id = fields.Integer(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True, allow_none=True)
    position = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"enum": _values(ApproverStatus)})
    status_label = fields.String(required=True)
    invited_at = fields.DateTime(required=True, allow_none=True)
    last_viewed_at = fields.DateTime(required=True, allow_none=True)
    decided_at = fields.DateTime(required=True, allow_none=True)
    link_state = fields.String(required=True, metadata={"enum": LINK_STATES})
    link_expires_at = fields.DateTime(required=True, allow_none=True)
    link_revoked_at = fields.DateTime(required=True, allow_none=True)
    reminders_sent = fields.Integer(required=True)
    next_reminder_at = fields.DateTime(required=True, allow_none=True)


class DecisionConditionSchema(Schema):
    id = fields.Integer(required=True)
    position = fields.Integer(required=True)
    text = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": _values(ConditionStatus)})
    resolution = fields.String(required=True)


class DecisionPersonSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True, allow_none=True)


class DecisionEvidenceSchema(Schema):
    name = fields.String(required=True, allow_none=True)
    type = fields.String(required=True, allow_none=True)
    size = fields.Integer(required=True, allow_none=True)
    sha256 = fields.String(required=True)


class DecisionOnBehalfSchema(Schema):
    recorded_by = fields.Nested(DecisionPersonSchema, required=True)
    channel = fields.String(required=True, metadata={"enum": _values(OnBehalfChannel)})
    given_at = fields.DateTime(required=True)
    recorded_at = fields.DateTime(required=True)
    note = fields.String(required=True)
    evidence = fields.Nested(DecisionEvidenceSchema, required=True, allow_none=True)


class DecisionSchema(Schema):
    id = fields.Integer(required=True)
    request_id = fields.Integer(required=True)
    approver_id = fields.Integer(required=True)
    by = fields.Nested(DecisionPersonSchema, required=True,
                       metadata={"description": "the contact whose decision it is"})
    outcome = fields.String(required=True, metadata={
        "enum": _values(Outcome), "description": "'rejected' is a request for changes"})
    outcome_label = fields.String(required=True)
    note = fields.String(required=True)
    conditions = fields.List(fields.Nested(DecisionConditionSchema), required=True)
    classification = fields.String(required=True, allow_none=True, metadata={
        "enum": [*_values(RejectionScope), None],
        "description": "changes requested: staff's billing answer, once given"})
    at = fields.DateTime(required=True)
    version_id = fields.Integer(required=True)
    version_sha256 = fields.String(required=True)
    identity = fields.String(required=True, metadata={"enum": _values(IdentityCheck)})
    on_behalf = fields.Nested(DecisionOnBehalfSchema, required=True, allow_none=True, metadata={
        "description": "set when staff recorded it for the contact (phone, meeting …)"})


class RequestSchema(Schema):
    id = fields.Integer(required=True)
    deliverable_id = fields.Integer(required=True)
    deliverable_title = fields.String(required=True)
    project_id = fields.Integer(required=True)
    client_id = fields.Integer(required=True)
    version_id = fields.Integer(required=True)
    version_number = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"enum": _values(RequestStatus)})
    status_label = fields.String(required=True)
    policy = fields.String(required=True, metadata={"enum": _values(Policy)})
    required_approvals = fields.Integer(required=True, allow_none=True)
    changes_end_request = fields.Boolean(required=True)
    policy_words = fields.String(required=True)
    due_date = fields.Date(required=True)
    overdue = fields.Boolean(required=True)
    escalated_at = fields.DateTime(required=True, allow_none=True)
    require_code = fields.Boolean(required=True)
    reminders = fields.Nested(RequestReminderPolicySchema, required=True)
    whose_turn = fields.Nested(RequestTurnSchema, required=True, allow_none=True, metadata={
        "description": "whose move it is while the request is open; null once it closed"})
    waiting_on = fields.List(fields.Integer(), required=True, metadata={
        "description": "ids of the approvers whose turn it is to decide"})
    sent_by_id = fields.Integer(required=True)
    sent_at = fields.DateTime(required=True)
    closed_at = fields.DateTime(required=True, allow_none=True)
    approvers = fields.List(fields.Nested(ApproverSchema), required=True, metadata={
        "description": "in order; one who handed over is 'delegated', their colleague follows"})
    decisions = fields.List(fields.Nested(DecisionSchema), required=True)


class RequestListArgs(Schema):
    status = fields.String(validate=validate.OneOf(_values(RequestStatus)))
    deliverable_id = fields.Integer(validate=ROW_ID)
    project_id = fields.Integer(validate=ROW_ID)
    client_id = fields.Integer(validate=ROW_ID)
    overdue = fields.Boolean(metadata={"description": "only open requests past due or "
                                                      "escalated"})


# --- from the models ---------------------------------------------------------------------

def _link_state(approver: Approver, now: datetime) -> str:
    """What the approver's newest link is worth, as the staff page says it."""
    if approver.invited_at is None:
        return "not_sent"
    if approver.link_revoked_at is not None or \
            approver.request.status == RequestStatus.CANCELLED:
        return "revoked"
    return link_state(approver, approver.link_generation, now).value


def approver_facts(approver: Approver, now: datetime | None = None) -> dict[str, Any]:
    contact, decision = approver.contact, approver.decision
    return {
        "id": approver.id, "contact_id": contact.id, "name": contact.name,
        "email": contact.email, "position": approver.position,
        "status": approver.status.value, "status_label": approver.status.label,
        "invited_at": approver.invited_at, "last_viewed_at": approver.last_viewed_at,
        "decided_at": decision.at if decision else None,
        "link_state": _link_state(approver, now or utcnow()),
        "link_expires_at": approver.link_expires_at, "link_revoked_at": approver.link_revoked_at,
        "reminders_sent": approver.reminders_sent, "next_reminder_at": approver.next_reminder_at,
    }


def decision_facts(decision: Decision) -> dict[str, Any]:
    contact = decision.approver.contact
    on_behalf = getattr(decision, "on_behalf", None)
    return {
        "id": decision.id, "request_id": decision.request_id,
        "approver_id": decision.approver_id,
        "by": {"id": contact.id, "name": contact.name, "email": contact.email},
        "outcome": decision.outcome.value, "outcome_label": decision.outcome.label,
        "note": decision.text,
        "conditions": [{"id": c.id, "position": c.position, "text": c.text,
                        "status": c.status.value, "resolution": c.resolution}
                       for c in decision.conditions],
        "classification": decision.classification.value if decision.classification else None,
        "at": decision.at, "version_id": decision.version_id,
        "version_sha256": decision.version_sha256, "identity": decision.identity.value,
        "on_behalf": {**on_behalf.facts, "given_at": on_behalf.given_at,
                      "recorded_at": on_behalf.recorded_at} if on_behalf else None,
    }


def request_facts(request: ReviewRequest) -> dict[str, Any]:
    version = request.version
    deliverable = version.deliverable
    is_open = request.status == RequestStatus.OPEN
    turn = whose_turn(deliverable) if is_open else None
    now = utcnow()
    approvers = request.all_approvers
    return {
        "id": request.id, "deliverable_id": deliverable.id,
        "deliverable_title": deliverable.title, "project_id": deliverable.project_id,
        "client_id": deliverable.project.client_id, "version_id": version.id,
        "version_number": version.number, "status": request.status.value,
        "status_label": request.status.label, "policy": request.policy.value,
        "required_approvals": request.required_approvals,
        "changes_end_request": request.changes_end_request, "policy_words": describe(request),
        "due_date": request.due_date, "overdue": is_open and request.overdue(today_utc()),
        "escalated_at": request.escalated_at, "require_code": request.require_code,
        "reminders": {"first_after_days": request.reminder_first_after_days,
                      "every_days": request.reminder_every_days,
                      "max_reminders": request.reminder_max},
        "whose_turn": {"side": turn.side, "label": turn.label} if turn else None,
        "waiting_on": [a.id for a in request.waiting_on] if is_open else [],
        "sent_by_id": request.sent_by_id, "sent_at": request.sent_at,
        "closed_at": request.closed_at,
        "approvers": [approver_facts(a, now) for a in approvers],
        "decisions": [decision_facts(d) for d in sorted(
            (a.decision for a in approvers if a.decision), key=lambda d: d.id)],
    }

