"""Cursor pagination: a page of rows by id and an opaque cursor for the next one."""
from __future__ import annotations

import base64
from typing import Any

from flask_babel import gettext as _
from marshmallow import Schema, fields, validate
from sqlalchemy import Select

from portal.errors import InvalidInput
from portal.extensions import db

DEFAULT_LIMIT, MAX_LIMIT = 50, 200


class PageArgs(Schema):
    cursor = fields.String(metadata={"description": "next_cursor of the previous page"})
    limit = fields.Integer(load_default=DEFAULT_LIMIT,
                           validate=validate.Range(min=1, max=MAX_LIMIT),
                           metadata={"description": f"rows per page, 1 to {MAX_LIMIT}"})


_PAGE_SCHEMAS: dict[type[Schema], type[Schema]] = {}


def page_of(item: type[Schema]) -> type[Schema]:
    """The envelope schema of a list of `item`: {items: […], next_cursor: str | null}."""
    if item not in _PAGE_SCHEMAS:
        name = item.__name__.removesuffix("Schema") + "Page"
        _PAGE_SCHEMAS[item] = Schema.from_dict({
            "items": fields.List(fields.Nested(item), required=True),
            "next_cursor": fields.String(allow_none=True, required=True, metadata={
                "description": "pass as ?cursor= for the next page; null on the last"}),
        }, name=name)
    return _PAGE_SCHEMAS[item]


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)).decode()
        kind, _sep, value = text.partition(":")
        if kind == "id" and value.isdigit() and len(value) < 19:
            return int(value)
    except (ValueError, UnicodeError):
        pass
    raise InvalidInput(_("This cursor is not one we gave out. Start again without it."))


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def paginate(query: Select, id_column: Any, args: dict[str, Any], *,
             newest_first: bool = True) -> dict[str, Any]:
    """One page of `query` (which selects ORM rows, filters already applied), ordered by
    `id_column`; the cursor remembers the last id, so rows added meanwhile never shift it."""
    limit = args.get("limit", DEFAULT_LIMIT)
    if args.get("cursor"):
        last = decode_cursor(args["cursor"])
        query = query.where(id_column < last if newest_first else id_column > last)
    order = id_column.desc() if newest_first else id_column.asc()
    rows = list(db.session.scalars(query.order_by(order).limit(limit + 1)).unique())
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": encode_cursor(rows[-1].id) if more else None}
