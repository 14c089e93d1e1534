"""/api/v1: The conversation on a request: replies, internal notes, pins.

Staff read the whole thread (internal notes marked) and post what the staff page's reply
form posts (workflow.comments.post_comment, its pin read by pins.pin_from_form)."""
from __future__ import annotations

from functools import partial
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.api.auth import acting_user
from portal.api.common import ID, storable_text
from portal.api.common import problems as documented
from portal.api.pagination import PageArgs, page_of, paginate
from portal.api.writes import creates
from portal.extensions import db
from portal.models import Comment, PointStatus, ReviewRequest
from portal.reports.pins import pins
from portal.workflow.comments import MAX_COMMENT, post_comment
from portal.workflow.pins import pin_from_form

blp = Blueprint("api_comments", __name__,
                description="The conversation on a request: replies, internal notes, pins")


_problems = partial(documented, blp)  # the refusals an operation can answer


FRACTION = validate.Range(min=0, max=1)


class CommentPinInputSchema(Schema):
    page = fields.Integer(required=True, validate=validate.Range(min=1, max=99999))
    x = fields.Float(allow_none=True, load_default=None, validate=FRACTION, metadata={
        "description": "a spot or a box's left edge, as a fraction of the page's width"})
    y = fields.Float(allow_none=True, load_default=None, validate=FRACTION, metadata={
        "description": "a spot or a box's top edge, as a fraction of the page's height"})
    w = fields.Float(allow_none=True, load_default=None, validate=FRACTION,
                     metadata={"description": "a box's width (with h), as a fraction"})
    h = fields.Float(allow_none=True, load_default=None, validate=FRACTION,
                     metadata={"description": "a box's height (with w), as a fraction"})


class CommentPinPlaceSchema(Schema):
    page = fields.Integer(required=True)
    x = fields.Float(required=True, allow_none=True)
    y = fields.Float(required=True, allow_none=True)
    w = fields.Float(required=True, allow_none=True)
    h = fields.Float(required=True, allow_none=True)


class CommentAuthorSchema(Schema):
    kind = fields.String(required=True, metadata={"enum": ["staff", "client"]})
    id = fields.Integer(required=True, allow_none=True,
                        metadata={"description": "the user's or the contact's id"})
    name = fields.String(required=True)


class CommentSchema(Schema):
    id = fields.Integer(required=True)
    request_id = fields.Integer(required=True)
    version_id = fields.Integer(required=True, allow_none=True)
    author = fields.Nested(CommentAuthorSchema, required=True)
    body = fields.String(required=True)
    internal = fields.Boolean(required=True, metadata={
        "description": "an internal note: the client never sees it"})
    created_at = fields.DateTime(required=True)
    pin = fields.Nested(CommentPinPlaceSchema, required=True, allow_none=True)
    point_status = fields.String(required=True, allow_none=True, metadata={
        "enum": [*(s.value for s in PointStatus), None],
        "description": "a client's point: how it stands across versions; null for the team's"})


class CommentPostSchema(Schema):
    body = fields.String(required=True, validate=[validate.Length(max=MAX_COMMENT * 2),
                                                  storable_text])
    internal = fields.Boolean(load_default=False, metadata={
        "description": "an internal note for the team (true) or a reply the client sees"})
    pin = fields.Nested(CommentPinInputSchema, allow_none=True, load_default=None, metadata={
        "description": "a place on the request's version: a page, a spot (x, y) or a box"})


class CommentPinSchema(Schema):
    comment_id = fields.Integer(required=True)
    number = fields.Integer(required=True, metadata={"description": "the marker's #"})
    page = fields.Integer(required=True)
    x = fields.Float(required=True, allow_none=True)
    y = fields.Float(required=True, allow_none=True)
    w = fields.Float(required=True, allow_none=True)
    h = fields.Float(required=True, allow_none=True)
    internal = fields.Boolean(required=True)


def comment_facts(comment: Comment) -> dict[str, Any]:
    staff = comment.author_user_id is not None
    return {
        "id": comment.id, "request_id": comment.request_id, "version_id": comment.version_id,
        "author": {"kind": "staff" if staff else "client",
                   "id": comment.author_user_id if staff else comment.author_contact_id,
                   "name": comment.author_name},
        "body": comment.body, "internal": comment.internal, "created_at": comment.created_at,
        "pin": {"page": comment.page, "x": comment.x, "y": comment.y, "w": comment.w,
                "h": comment.h} if comment.pinned else None,
        "point_status": comment.resolution_status.value if comment.is_client_point else None,
    }


def _pin_form(pin: dict[str, Any] | None) -> dict[str, str]:
    """The pin as the reply form sends it, for the page's own reader (pin_from_form)."""
    if pin is None:
        return {}
    return {name: "" if value is None else str(value) for name, value in pin.items()}


@blp.route(f"/requests/<{ID}:request_id>/comments")
class RequestComments(MethodView):
    """One route for both methods: an id out of range then matches nothing (404), where
    two routes would answer one method's miss with the other's 405."""

    @blp.arguments(PageArgs, location="query", as_kwargs=True)
    @blp.response(200, page_of(CommentSchema))
    @_problems(401, 404, 422)
    def get(self, request_id: int, **page: Any) -> dict[str, Any]:
        """List a request's comments, oldest first

        The whole thread as the staff page shows it: the client's comments, the team's
        replies, and internal notes (marked `internal`)."""
        request = db.get_or_404(ReviewRequest, request_id)
        query = select(Comment).where(Comment.request_id == request.id).options(
            joinedload(Comment.author_user), joinedload(Comment.author_contact))
        found = paginate(query, Comment.id, page, newest_first=False)
        return {**found, "items": [comment_facts(c) for c in found["items"]]}

    @creates
    @blp.arguments(CommentPostSchema)
    @blp.response(201, CommentSchema)
    @_problems(400, 401, 403, 404, 409, 422)
    def post(self, posted: dict[str, Any], request_id: int) -> dict[str, Any]:
        """Post a reply or an internal note

        A reply is emailed to the approvers; an internal note stays with the team. Either
        may be pinned to a page of the request's version, at a spot or a box."""
        request = db.get_or_404(ReviewRequest, request_id)
        comment = post_comment(acting_user(), request, posted["body"],
                               internal=posted["internal"],
                               pin=pin_from_form(_pin_form(posted["pin"])))
        db.session.flush()
        return comment_facts(comment)


@blp.get(f"/requests/<{ID}:request_id>/pins")
@blp.response(200, CommentPinSchema(many=True))
@_problems(401, 404)
def list_pins(request_id: int) -> list[dict[str, Any]]:
    """List the pins on a request's version

    The numbered markers the staff viewer draws (#1, #2 … in thread order), each naming
    its comment; internal notes' pins included and marked."""
    request = db.get_or_404(ReviewRequest, request_id)
    found = pins(request.comments, request.version_id)
    return [{"comment_id": m.comment_id, "number": m.number, "page": m.page, "x": m.x,
             "y": m.y, "w": m.w, "h": m.h, "internal": m.internal}
            for m in sorted((m for page in found.by_page.values() for m in page),
                            key=lambda m: m.number)]
