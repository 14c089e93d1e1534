"""/api/v1: Deliverables: create, edit, internal review.

The same functions as the staff pages (portal/views/staff.py, deliverable_edit.py and
clients.py's "new deliverable"): the list's filters and cursor are the board's own, and
every change goes through portal/workflow, so the same rules, audit events and emails."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import url_for
from flask_babel import gettext as _
from flask_smorest import Blueprint
from sqlalchemy import select

from portal import workflow
from portal.api.auth import acting_user
from portal.api.common import LOCATION, field_error, problems
from portal.api.common import named as _named
from portal.api.deliverables_schemas import (
    DELIVERABLE_ID,
    DeliverableCreateSchema,
    DeliverableListArgs,
    DeliverableSchema,
    DeliverableUpdateSchema,
    InternalReviewCreateSchema,
    SubmitSchema,
)
from portal.api.pagination import decode_cursor, encode_cursor, page_of
from portal.api.writes import creates, writes
from portal.extensions import db
from portal.models import Deliverable, Project, User
from portal.reports import board
from portal.views.staff import _list_filters
from portal.workflow.editing import Details, edit_details

blp = Blueprint("api_deliverables", __name__,
                description="Deliverables: create, edit, internal review")


def deliverable_out(deliverable: Deliverable) -> dict[str, Any]:
    """What the API says of a deliverable (DeliverableSchema)."""
    turn = workflow.whose_turn(deliverable)
    version = deliverable.current_version
    requests = deliverable.requests  # newest first
    project = deliverable.project
    return {
        "id": deliverable.id, "title": deliverable.title,
        "description": deliverable.description or "", "state": deliverable.state,
        "state_label": deliverable.state.label,
        "turn": {"side": turn.side, "label": turn.label},
        "project": _named(project), "client": _named(project.client),
        "owner": _named(deliverable.owner), "reviewer": _named(deliverable.reviewer),
        "due_date": deliverable.due_date,
        "current_version": None if version is None else {
            "id": version.id, "number": version.number, "file_name": version.file_name,
            "uploaded_at": version.uploaded_at},
        "latest_request_id": requests[0].id if requests else None,
        "created_at": deliverable.created_at, "last_activity_at": deliverable.last_activity_at,
    }


def _loaded(deliverable_id: int) -> Deliverable:
    """The deliverable with what its answer shows (as a board row loads it), or 404."""
    return db.first_or_404(board.with_rows_loaded(select(Deliverable))
                           .where(Deliverable.id == deliverable_id))


@blp.get("/deliverables")
@blp.arguments(DeliverableListArgs, location="query")
@blp.response(200, page_of(DeliverableSchema))
@problems(blp, 401, 422)
def list_deliverables(args: dict[str, Any]) -> dict[str, Any]:
    """List deliverables, newest first, filtered as the staff list is"""
    # The page's own filters from the query (already validated above); the cursor is the
    # board's "before", carried in the API's opaque form.
    filters = replace(_list_filters(),
                      before=decode_cursor(args["cursor"]) if args.get("cursor") else None)
    rows, next_id = board.deliverable_page(filters, size=args["limit"])
    return {"items": [deliverable_out(d) for d in rows],
            "next_cursor": encode_cursor(next_id) if next_id is not None else None}


@blp.post("/deliverables")
@creates
@blp.arguments(DeliverableCreateSchema)
@blp.response(201, DeliverableSchema, headers=LOCATION)
@problems(blp, 400, 401, 403, 422)
def create_deliverable(data: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Create a deliverable in a project (a draft, without a version yet)"""
    project = db.session.get(Project, data["project_id"])
    if project is None:
        raise field_error("project_id", _("Choose the project the deliverable belongs to."))
    deliverable = workflow.create_deliverable(acting_user(), project, data["title"],
                                              data["description"], data["due_date"])
    db.session.flush()
    return deliverable_out(deliverable), 201, {
        "Location": url_for("api_deliverables.get_deliverable", deliverable_id=deliverable.id)}


@blp.get(f"/deliverables/{DELIVERABLE_ID}")
@blp.response(200, DeliverableSchema)
@problems(blp, 401, 404)
def get_deliverable(deliverable_id: int) -> dict[str, Any]:
    """A deliverable: its state, whose turn it is, its current version"""
    return deliverable_out(_loaded(deliverable_id))


@blp.patch(f"/deliverables/{DELIVERABLE_ID}")
@writes
@blp.arguments(DeliverableUpdateSchema)
@blp.response(200, DeliverableSchema)
@problems(blp, 400, 401, 403, 404, 409, 422)
def edit_deliverable(data: dict[str, Any], deliverable_id: int) -> dict[str, Any]:
    """Edit a deliverable's title, description or due date"""
    deliverable = _loaded(deliverable_id)
    edit_details(acting_user(), deliverable, Details(
        data.get("title", deliverable.title),
        data.get("description", deliverable.description or ""),
        data.get("due_date", deliverable.due_date)))
    return deliverable_out(deliverable)


@blp.post(f"/deliverables/{DELIVERABLE_ID}/submit")
@writes
@blp.arguments(SubmitSchema)
@blp.response(200, DeliverableSchema)
@problems(blp, 400, 401, 403, 404, 409, 422)
def submit_deliverable(data: dict[str, Any], deliverable_id: int) -> dict[str, Any]:
    """Submit the current version for internal review"""
    deliverable = _loaded(deliverable_id)
    reviewer = None
    if data["reviewer_id"] is not None:
        reviewer = db.session.get(User, data["reviewer_id"])
        if reviewer is None:
            raise field_error("reviewer_id", _("There is no colleague with this id."))
    workflow.submit_for_review(acting_user(), deliverable, reviewer)
    return deliverable_out(deliverable)


@blp.post(f"/deliverables/{DELIVERABLE_ID}/review")
@writes
@blp.arguments(InternalReviewCreateSchema)
@blp.response(200, DeliverableSchema)
@problems(blp, 400, 401, 403, 404, 409, 422)
def review_deliverable(data: dict[str, Any], deliverable_id: int) -> dict[str, Any]:
    """Review the current version internally: approve it, or send it back with a note"""
    deliverable = _loaded(deliverable_id)
    workflow.review_internally(acting_user(), deliverable, approve=data["approve"],
                               note=data["note"])
    return deliverable_out(deliverable)
