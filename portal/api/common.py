"""What every API module shares: ids, text a database can keep, and the refusals an
operation documents."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import ValidationError, fields, validate
from werkzeug.exceptions import UnprocessableEntity

from portal.api.problems import PROBLEM, ProblemSchema
from portal.urls import MAX_ROW_ID

ROW_ID = validate.Range(min=1, max=MAX_ROW_ID)  # an id in a body or a query
ID = f"int(min=1, max={MAX_ROW_ID})"  # an id in a route: <{ID}:request_id>
LOCATION = {"Location": {"description": "the URL of what was created",
                         "schema": {"type": "string"}}}


def field_error(field: str, message: str, location: str = "json") -> UnprocessableEntity:
    """A 422 naming the field, as the schema's own checks do, with `message` as detail."""
    error = UnprocessableEntity(message)
    error.data = {"messages": {location: {field: [message]}}}  # type: ignore[attr-defined]
    return error


def named(row: Any) -> dict[str, Any] | None:
    """A person or thing as a list or an answer names it: its id and name."""
    return {"id": row.id, "name": row.name} if row is not None else None


def problems(blp: Blueprint, *statuses: int) -> Callable[[Callable[..., Any]], Any]:
    """Document the problem+json answers an operation can give."""
    def document(view: Callable[..., Any]) -> Any:
        for status in statuses:
            view = blp.alt_response(status, schema=ProblemSchema, content_type=PROBLEM)(view)
        return view
    return document


def valid_unicode(value: str) -> None:
    """JSON can spell half a character ("\\ud800"); no database can keep one."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(_("The text is not valid Unicode.")) from exc


def storable_text(value: str) -> None:
    """Free text (descriptions, notes) the database can keep: no NUL (single lines are the
    domain's to refuse, with every other control character), no half character."""
    if "\x00" in value:
        raise ValidationError(_("The text contains a NUL character; remove it."))
    valid_unicode(value)


def line_field(**kwargs: Any) -> fields.String:
    return fields.String(validate=valid_unicode, **kwargs)


def text_field(**kwargs: Any) -> fields.String:
    return fields.String(validate=storable_text, **kwargs)
