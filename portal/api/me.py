"""/me: who a token acts as, and what it may do."""
from __future__ import annotations

from typing import Any

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from portal.api.auth import acting_user
from portal.api.common import problems

blp = Blueprint("api_me", __name__, description="The person a token acts as")


class MeSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True, metadata={"enum": ["admin", "staff", "finance"]})
    token_name = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)
    token_expires_at = fields.DateTime(allow_none=True, required=True)


@blp.get("/me")
@blp.response(200, MeSchema)
@problems(blp, 401)
def me() -> dict[str, Any]:
    """Who this token acts as"""
    user, token = acting_user(), g.api_token
    return {"id": user.id, "name": user.name, "email": user.email, "role": user.role.value,
            "token_name": token.name, "scopes": token.scope_list,
            "token_expires_at": token.expires_at}
