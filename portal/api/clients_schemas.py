"""What the clients API reads and answers: clients, their contacts, and projects.

Only the shape is checked here (types, required fields, a language from the list); what a
name or an address may hold, and every other rule, is the domain's (portal/people)."""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from portal.api.common import ROW_ID
from portal.api.pagination import PageArgs
from portal.i18n import LANGUAGES

# Row ids fit the database's integer; a bigger one names nothing (422, not a database error).
LANGUAGE_HELP = ("one of the portal's languages; null: the client's default "
                 "(for a client: the portal's)")


def _language(description: str = LANGUAGE_HELP) -> fields.String:
    return fields.String(allow_none=True, validate=validate.OneOf(list(LANGUAGES)),
                         metadata={"description": description})


class StrictBoolean(fields.Boolean):
    """true or false, nothing else ("yes" and 1 are refused, as the contract says)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class _AtLeastOneField(Schema):
    """A PATCH body that changes something: an empty one is refused, not a silent no-op."""

    class Meta:
        description = "Send at least one field; those left out keep their values."

    @validates_schema
    def _something_to_change(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data:
            raise ValidationError(_("Send at least one field to change."))


# --- answers -------------------------------------------------------------------------

class ContactSchema(Schema):
    id = fields.Integer(required=True)
    client_id = fields.Integer(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True, allow_none=True,
                          metadata={"description": "null: no address (links go nowhere)"})
    language = fields.String(required=True, allow_none=True,
                             metadata={"description": "null: the client's language"})
    created_at = fields.DateTime(required=True)


class ClientSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    language = fields.String(required=True, allow_none=True, metadata={
        "description": "every contact's language unless they have their own; "
                       "null: the portal's"})
    timezone = fields.String(required=True, metadata={
        "description": "IANA zone of the client's pages, emails and reminder hour"})
    require_code_default = fields.Boolean(required=True, metadata={
        "description": "new requests ask for a code emailed to the approver"})
    direct_handover = fields.Boolean(required=True, metadata={
        "description": "contacts may hand a request over without the team confirming"})
    created_at = fields.DateTime(required=True)
    contacts = fields.List(fields.Nested(ContactSchema), required=True)


class ProjectSchema(Schema):
    id = fields.Integer(required=True)
    client_id = fields.Integer(required=True)
    name = fields.String(required=True)
    owner_id = fields.Integer(required=True, metadata={
        "description": "the account manager new deliverables are given to"})
    owner_name = fields.String(required=True, attribute="owner.name")
    created_at = fields.DateTime(required=True)


# --- requests ------------------------------------------------------------------------

class ClientNewContactSchema(Schema):
    name = fields.String(required=True)
    email = fields.String(allow_none=True, load_default=None)


class ClientCreateSchema(Schema):
    name = fields.String(required=True)
    language = _language("one of the portal's languages; null: the portal's")
    contacts = fields.List(fields.Nested(ClientNewContactSchema), load_default=list,
                           validate=validate.Length(max=100))


class ClientUpdateSchema(_AtLeastOneField):
    language = _language("one of the portal's languages; null: the portal's")
    timezone = fields.String(metadata={"description": "an IANA zone, e.g. Europe/Paris"})
    require_code_default = StrictBoolean()
    direct_handover = StrictBoolean()


class ContactCreateSchema(Schema):
    name = fields.String(required=True)
    email = fields.String(allow_none=True, load_default=None)
    language = _language()


class ContactUpdateSchema(_AtLeastOneField):
    name = fields.String()
    email = fields.String(allow_none=True, metadata={"description": "a new address revokes "
                                                     "every link sent to the old one"})
    language = _language()


class ProjectCreateSchema(Schema):
    client_id = fields.Integer(required=True, strict=True, validate=ROW_ID)
    name = fields.String(required=True)
    owner_id = fields.Integer(strict=True, validate=ROW_ID, metadata={
        "description": "an active account manager; by default, you"})


class ProjectListArgs(PageArgs):
    client_id = fields.Integer(validate=ROW_ID,
                               metadata={"description": "only this client's projects"})
