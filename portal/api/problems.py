"""RFC 9457 problem details: how every API error answers, with the domain's own words."""
from __future__ import annotations

from typing import Any

from flask import Response, json, request
from marshmallow import Schema, fields

API_PREFIX = "/api/v1"
PROBLEM = "application/problem+json"


def is_api_url() -> bool:
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def problem(status: int, title: str, detail: str = "", *, errors: Any = None,
            headers: dict[str, str] | None = None) -> Response:
    """`detail` is what a person reads (a domain refusal, translated); `errors`, when the
    input was wrong, names each field and what was wrong with it."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM)
    response.headers["Cache-Control"] = "no-store"
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="Signoff API"'
    response.headers.update(headers or {})
    return response


class ProblemSchema(Schema):
    """The body of every error answer, for the contract (`@blp.alt_response`)."""
    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(metadata={"description": "what went wrong, in the caller's words"})
    errors = fields.Dict(metadata={"description": "each wrong field, by location and name"})
