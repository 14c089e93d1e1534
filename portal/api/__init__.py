"""The REST API, /api/v1: JSON over HTTPS for the agency's own tools, with an OpenAPI 3.1
contract generated from these modules (flask-smorest) at /api/v1/openapi.json.

Views here only parse, call the same domain functions as the pages, and commit through
`writes`/`creates`. Errors are RFC 9457 problem details, answered by the app's own error
handlers (portal/views), which know an API URL when they see one.
"""
from __future__ import annotations

import http

from flask import Flask
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from portal.api.problems import API_PREFIX, PROBLEM, ProblemSchema
from portal.extensions import csrf, limiter

DESCRIPTION = """\
Everything the staff pages can do, for the agency's own tools.

**Authentication.** Create a personal API token on your account page and send it as
`Authorization: Bearer so_…`. A token acts as you, with your role; a `read` token may
only GET. Tokens can expire and can be revoked at any time.

**Lists** are paginated by cursor: pass the `next_cursor` of one page as `?cursor=` to
get the next. **Creating calls** accept an `Idempotency-Key` header. **Errors** are
`application/problem+json` (RFC 9457); `detail` says what to do, in your language.
"""


class SignoffApi(Api):
    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        """The app's handlers answer API URLs with problem+json (portal/views)."""

    def _register_responses(self) -> None:
        """Every error response in the contract is a problem (RFC 9457), as it is on the wire."""
        for status in http.HTTPStatus:
            response: dict = {"description": status.phrase}
            if status >= 400:
                response["schema"] = ProblemSchema
            prepare_response(response, self.spec, PROBLEM if status >= 400 else "application/json")
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": ProblemSchema}
        prepare_response(response, self.spec, PROBLEM)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def _api_limit() -> str:
    from flask import current_app
    return current_app.config["API_RATE_LIMIT"]


def init_api(app: Flask) -> None:
    from portal.api import (
        auth,
        certificates,
        clients,
        comments,
        deliverables,
        docs,
        me,
        requests,
        versions,
        webhooks,
    )

    app.config.update({
        "API_TITLE": "Signoff API", "API_VERSION": "v1", "OPENAPI_VERSION": "3.1.0",
        "OPENAPI_URL_PREFIX": API_PREFIX, "OPENAPI_JSON_PATH": "openapi.json",
        "API_SPEC_OPTIONS": {
            "info": {"description": DESCRIPTION},
            "servers": [{"url": "/", "description": "this portal"}],
            "security": [{"bearerAuth": []}],
        },
    })
    api = SignoffApi()
    api.init_app(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer",
                       "description": "A personal API token (so_…), from your account page."})
    for module in (me, clients, deliverables, versions, requests, comments, certificates,
                   webhooks):
        limiter.limit(_api_limit, key_func=auth.rate_key)(module.blp)
        csrf.exempt(module.blp)
        api.register_blueprint(module.blp, url_prefix=API_PREFIX)
    app.register_blueprint(docs.bp, url_prefix=API_PREFIX)
    app.before_request(auth.authenticate)
    app.extensions["signoff_api"] = api
