"""The shapes of deliverables, versions, internal reviews and page images in /api/v1
(used by portal/api/deliverables.py and portal/api/versions.py)."""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.datastructures import FileStorage

from portal.api.common import ID, ROW_ID, line_field, text_field
from portal.api.pagination import PageArgs
from portal.models import DeliverableState, RenderStatus, ReviewOutcome

DELIVERABLE_ID = f"<{ID}:deliverable_id>"
VERSION_ID = f"<{ID}:version_id>"
TURN_SIDES = ["us", "client", "overdue", "done"]


_line, _text = line_field, text_field


# --- deliverables ----------------------------------------------------------------------

class DeliverableListArgs(PageArgs):
    """The filters of the staff list (/deliverables), by the same names."""
    client = fields.Integer(validate=ROW_ID, metadata={"description": "a client's id"})
    project = fields.Integer(validate=ROW_ID, metadata={"description": "a project's id"})
    state = fields.Enum(DeliverableState, by_value=True)
    owner = fields.Integer(validate=ROW_ID,
                           metadata={"description": "the owning account manager's id"})
    # "1" or "0", exactly as the page's filter form sends it.
    overdue = fields.String(validate=validate.OneOf(["0", "1"]), metadata={
        "description": "1: only those whose request with the client is past its due date"})


class DeliverableNamedSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)


class DeliverableTurnSchema(Schema):
    side = fields.String(required=True, metadata={"enum": TURN_SIDES})
    label = fields.String(required=True, metadata={"description": "whose move, in words"})


class DeliverableVersionSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.Integer(required=True)
    file_name = fields.String(required=True)
    uploaded_at = fields.DateTime(required=True)


class DeliverableSchema(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    state = fields.Enum(DeliverableState, by_value=True, required=True)
    state_label = fields.String(required=True)
    turn = fields.Nested(DeliverableTurnSchema, required=True)
    project = fields.Nested(DeliverableNamedSchema, required=True)
    client = fields.Nested(DeliverableNamedSchema, required=True)
    owner = fields.Nested(DeliverableNamedSchema, required=True)
    reviewer = fields.Nested(DeliverableNamedSchema, allow_none=True, required=True)
    due_date = fields.Date(allow_none=True, required=True)
    current_version = fields.Nested(DeliverableVersionSchema, allow_none=True, required=True)
    latest_request_id = fields.Integer(allow_none=True, required=True, metadata={
        "description": "the newest review request of any version, open or closed"})
    created_at = fields.DateTime(required=True)
    last_activity_at = fields.DateTime(required=True)


class DeliverableCreateSchema(Schema):
    project_id = fields.Integer(required=True, validate=ROW_ID)
    title = _line(required=True)
    description = _text(load_default="")
    due_date = fields.Date(load_default=None, allow_none=True)


class DeliverableUpdateSchema(Schema):
    """Only the fields sent change; `due_date: null` removes the due date."""
    title = _line()
    description = _text()
    due_date = fields.Date(allow_none=True)


class SubmitSchema(Schema):
    reviewer_id = fields.Integer(load_default=None, allow_none=True, validate=ROW_ID, metadata={
        "description": "the colleague asked to review it; null: anyone on staff"})


class InternalReviewCreateSchema(Schema):
    # true or false only (not "yes", "on", 1: a decision is not guessed from a word).
    approve = fields.Boolean(required=True, truthy={True}, falsy={False}, metadata={
        "description": "true: reviewed, ready to deliver; false: sent back with the note"})
    note = _text(load_default="", metadata={"description": "required when sending back"})


# --- versions --------------------------------------------------------------------------

class InternalReviewSchema(Schema):
    id = fields.Integer(required=True)
    reviewer = fields.Nested(DeliverableNamedSchema, required=True)
    outcome = fields.Enum(ReviewOutcome, by_value=True, required=True)
    note = fields.String(required=True)
    at = fields.DateTime(required=True)


class VersionSchema(Schema):
    id = fields.Integer(required=True)
    deliverable_id = fields.Integer(required=True)
    number = fields.Integer(required=True)
    file_name = fields.String(required=True)
    media_type = fields.String(required=True)
    size = fields.Integer(required=True, metadata={"description": "bytes"})
    sha256 = fields.String(required=True)
    what_changed = fields.String(required=True)
    uploaded_by = fields.Nested(DeliverableNamedSchema, required=True)
    uploaded_at = fields.DateTime(required=True)
    locked_at = fields.DateTime(allow_none=True, required=True, metadata={
        "description": "when an approval locked it (its file can no longer change)"})
    render_status = fields.Enum(RenderStatus, by_value=True, allow_none=True, required=True,
                                metadata={"description": "the page images; null: none asked"})
    internal_reviews = fields.List(fields.Nested(InternalReviewSchema), required=True)
    file_url = fields.String(required=True)


class VersionFile(Upload):
    """A file part of the multipart body (a plain text field by that name is refused)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, FileStorage):
            raise ValidationError(_("Choose a file to upload."))
        return value


class VersionUploadSchema(Schema):
    file = VersionFile(required=True)
    what_changed = _text(load_default="", metadata={
        "description": "what changed since the last version, shown with it"})


# --- page images -------------------------------------------------------------------------

class RenderPageSchema(Schema):
    number = fields.Integer(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    thumb_width = fields.Integer(required=True)
    thumb_height = fields.Integer(required=True)
    media_type = fields.String(required=True)
    image_url = fields.String(required=True)
    thumb_url = fields.String(required=True)


class RenderSchema(Schema):
    version_id = fields.Integer(required=True)
    status = fields.Enum(RenderStatus, by_value=True, allow_none=True, required=True, metadata={
        "description": "null: the version was uploaded before page images existed"})
    message = fields.String(required=True, metadata={
        "description": "what to say instead of pages; empty when there are (or will be) some"})
    pages = fields.List(fields.Nested(RenderPageSchema), required=True)

