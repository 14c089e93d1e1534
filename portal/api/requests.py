"""/api/v1: Delivery and review requests: approvers, reminders, links, decisions.

Delivering calls what the staff deliver form calls (workflow.deliver, then the observers);
the staff moves on a request live in request_actions.py, on this blueprint."""
from __future__ import annotations

from functools import partial
from typing import Any

from flask import url_for
from flask_babel import gettext as _
from flask_smorest import Blueprint
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from portal import workflow
from portal.api.auth import acting_user
from portal.api.common import problems as documented
from portal.api.pagination import PageArgs, page_of, paginate
from portal.api.request_schemas import (
    ID,
    DecisionSchema,
    DeliverySchema,
    RequestListArgs,
    RequestSchema,
    decision_facts,
    request_facts,
)
from portal.api.writes import creates
from portal.errors import InvalidInput
from portal.extensions import db
from portal.models import (
    Approver,
    Contact,
    Decision,
    Deliverable,
    Policy,
    Project,
    RequestStatus,
    ReviewRequest,
    Version,
    today_utc,
    utcnow,
)
from portal.workflow import observers

blp = Blueprint("api_requests", __name__,
                description="Delivery and review requests: approvers, reminders, links, decisions")


problems = partial(documented, blp)  # the refusals an operation can answer


def _with_details(query: Select) -> Select:
    """Everything request_facts reads, in a few statements for a whole page."""
    approvers = selectinload(ReviewRequest.all_approvers)
    decision = approvers.selectinload(Approver.decision)
    deliverable = selectinload(ReviewRequest.version).selectinload(Version.deliverable)
    return query.options(
        deliverable.selectinload(Deliverable.project), deliverable.selectinload(Deliverable.owner),
        # whose_turn reads the deliverable's open request among all its versions' requests
        deliverable.selectinload(Deliverable.versions).selectinload(Version.requests),
        approvers.selectinload(Approver.contact), approvers.selectinload(Approver.request),
        decision.selectinload(Decision.conditions), decision.selectinload(Decision.approver),
        selectinload(ReviewRequest.approvers))


def request_or_404(request_id: int) -> ReviewRequest:
    return db.get_or_404(ReviewRequest, request_id)


def _contacts(ids: list[int]) -> list[Contact]:
    """The approvers the call names, in its order (the order of a sequential policy)."""
    chosen = []
    for contact_id in ids:
        contact = db.session.get(Contact, contact_id)
        if contact is None:
            raise InvalidInput(_("One of the chosen contacts no longer exists."))
        chosen.append(contact)
    return chosen


@blp.post(f"/deliverables/<{ID}:deliverable_id>/deliver")
@creates
@blp.arguments(DeliverySchema)
@blp.response(201, RequestSchema, headers={"Location": {
    "description": "the new request", "schema": {"type": "string"}}})
@problems(400, 401, 403, 404, 409, 422)
def deliver(delivery: dict[str, Any], deliverable_id: int) -> Any:
    """Deliver a deliverable to the client's approvers

    What the staff page's Deliver form does: the reviewed current version goes to the
    approvers (emailed their links) under the chosen policy, due date and reminders, and
    the observers are invited. Everything missing is listed at once (409)."""
    deliverable = db.get_or_404(Deliverable, deliverable_id)
    user, reminders = acting_user(), delivery["reminders"]
    policy = Policy(delivery["policy"])
    made = workflow.deliver(
        user, deliverable, _contacts(delivery["approvers"]), policy, delivery["due_date"],
        reminder_policy=workflow.ReminderPolicy(**reminders) if reminders else None,
        require_code=delivery["require_code"],
        required_approvals=delivery["required_approvals"] if policy == Policy.AT_LEAST
        else None,
        changes_end_request=delivery["changes_end_request"])
    observers.add_observers(made, _observer_contacts(delivery["observers"]),
                            delivery["observers_may_comment"], user, utcnow())
    db.session.flush()
    location = url_for("api_requests.get_request", request_id=made.id)
    return request_facts(made), 201, {"Location": location}


def _observer_contacts(ids: list[int]) -> list[Contact]:
    return observers.contacts_by_id([str(contact_id) for contact_id in ids])


@blp.get("/requests")
@blp.arguments(PageArgs, location="query", as_kwargs=True)
@blp.arguments(RequestListArgs, location="query", as_kwargs=True)
@blp.response(200, page_of(RequestSchema))
@problems(401, 422)
def list_requests(cursor: str | None = None, limit: int = 50, status: str | None = None,
                  deliverable_id: int | None = None, project_id: int | None = None,
                  client_id: int | None = None, overdue: bool | None = None) -> dict[str, Any]:
    """List requests, newest first

    Filtered as the staff list filters: by client, project, deliverable, status, and
    whether it is overdue (open, past due or escalated)."""
    query = select(ReviewRequest)
    if status:
        query = query.where(ReviewRequest.status == RequestStatus(status))
    if deliverable_id or project_id or client_id:
        versions = select(Version.id).join(Deliverable)
        if deliverable_id:
            versions = versions.where(Deliverable.id == deliverable_id)
        if project_id:
            versions = versions.where(Deliverable.project_id == project_id)
        if client_id:
            versions = versions.join(Project).where(Project.client_id == client_id)
        query = query.where(ReviewRequest.version_id.in_(versions))
    if overdue is not None:
        late = ReviewRequest.overdue(today_utc()) & (ReviewRequest.status == RequestStatus.OPEN)
        query = query.where(late if overdue else ~late)
    page = paginate(_with_details(query), ReviewRequest.id,
                    {"cursor": cursor, "limit": limit})
    return {**page, "items": [request_facts(r) for r in page["items"]]}


@blp.get(f"/requests/<{ID}:request_id>")
@blp.response(200, RequestSchema)
@problems(401, 404)
def get_request(request_id: int) -> dict[str, Any]:
    """Read a request

    Its status, policy in words, due date, whose turn it is, each approver (their link,
    when they last looked, when they decided) and the decisions."""
    request = db.session.scalar(_with_details(select(ReviewRequest))
                                .where(ReviewRequest.id == request_id))
    if request is None:
        request_or_404(request_id)
    return request_facts(request)


@blp.get(f"/requests/<{ID}:request_id>/decisions")
@blp.response(200, DecisionSchema(many=True))
@problems(401, 404)
def list_decisions(request_id: int) -> list[dict[str, Any]]:
    """List a request's decisions

    Each approver's outcome, note, conditions, who and when, and who recorded it when
    staff did so on the contact's behalf. In the order they were made."""
    request = request_or_404(request_id)
    decisions = db.session.scalars(
        select(Decision).where(Decision.request_id == request.id).order_by(Decision.id)
        .options(selectinload(Decision.conditions),
                 selectinload(Decision.approver).selectinload(Approver.contact)))
    return [decision_facts(d) for d in decisions]


from portal.api import request_actions  # noqa: E402, F401  (its routes, on this blueprint)
