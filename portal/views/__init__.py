"""Blueprints, one per audience, the response headers every page carries, and the error
pages they share."""
from __future__ import annotations

from flask import Flask, Response, current_app, g, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import (
    HTTPException,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
)

from portal.api.auth import READING_POSTS
from portal.api.problems import is_api_url, problem
from portal.audit import describe
from portal.database import abandon_transaction, declare_reads_only
from portal.errors import DomainError
from portal.reports.devices import describe_device
from portal.views.client_errors import client_error_page, client_words, is_client_url
from portal.views.htmx import is_htmx
from portal.views.input_guard import refuse_unstorable_text
from portal.workflow import whose_turn
from portal.workflow.policies import describe as policy_words

# Strict: no inline script or style anywhere; htmx is configured through its meta tag.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _security_headers(response: Response) -> Response:
    # What a signed-in person sees is theirs: no shared or disk cache keeps it. (g holds
    # the user only if this request loaded one; static files never do.) A response that
    # says it is immutable (a page image, named by its hash, served after an access check
    # as private: views/render_files.py) keeps its long-lived private caching on purpose.
    user = g.get("_login_user")
    if (user is not None and user.is_authenticated and request.endpoint != "static"
            and not response.cache_control.immutable):
        response.cache_control.private = True
        response.cache_control.no_store = True
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


# Safe methods write nothing (link scanners send them too), so their transactions only
# read: on SQLite they take no lock and never wait behind a writer.
READ_ONLY_METHODS = {"GET", "HEAD", "OPTIONS"}


def _declare_intent() -> None:
    declare_reads_only(request.method in READ_ONLY_METHODS or request.path in READING_POSTS)


def _end_intent(_exc: BaseException | None) -> None:
    declare_reads_only(False)  # whatever runs next in this thread may write


UNAVAILABLE = "errors/unavailable.html"  # asks the database nothing: for 500 and 503


def _error_page(status: int, title: str, message: str, page: str = "errors/error.html",
                *, ours: bool = True):
    """`ours`: the message is our own words for this failure, not the framework's."""
    if is_api_url():
        return problem(status, title, message)
    htmx = is_htmx()  # shown in the page's error area instead of replacing a block
    if is_client_url():  # a client's page: their layout and words, never the sign-in
        if not htmx:
            html = client_error_page(status, message if ours else None,
                                     unavailable=page == UNAVAILABLE)
            return html, status, {"Cache-Control": "no-store"}
        title, message = client_words(status, message if ours else None)
    name = "errors/_inline.html" if htmx else page
    context = {"status": status, "title": title, "message": message}
    if page == UNAVAILABLE:
        # Straight from the environment: the context processors (Flask-Login's current_user
        # among them) would ask the database that just failed.
        html = current_app.jinja_env.get_template(name).render(**context)
    else:
        html = render_template(name, **context)
    if htmx:
        return html, status, {"HX-Retarget": "#htmx-errors", "HX-Reswap": "innerHTML"}
    return html, status


def _unique_constraint(exc: IntegrityError) -> str | None:
    """The unique constraint a write broke (its name, never the values), or None when the
    failure was of another kind."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "23505":  # PostgreSQL: unique_violation
        return getattr(getattr(orig, "diag", None), "constraint_name", None) or "unique"
    text = str(orig)
    if text.startswith("UNIQUE constraint failed"):  # SQLite names the columns
        return text.removeprefix("UNIQUE constraint failed: ")
    return None


def _not_found_if_no_such_row(exc: HTTPException) -> HTTPException:
    """Werkzeug checks the method before the id's bounds, so PATCH /deliverables/<an id no
    row can have> would be a 405 naming GET, which 404s too: say 404 at once."""
    if not isinstance(exc, MethodNotAllowed) or not exc.valid_methods:
        return exc
    try:
        current_app.url_map.bind_to_environ(request.environ).match(
            method=exc.valid_methods[0])
    except NotFound as not_found:
        return not_found
    except HTTPException:
        pass
    return exc


def register_views(app: Flask) -> None:
    from portal import local_time
    from portal.views import (
        admin,
        agency,
        api_tokens,  # noqa: F401  (API tokens on the account page, on the auth blueprint)
        auth,
        classification,
        client,
        client_comments,  # noqa: F401  (the thread's comment post, on the client blueprint)
        client_compare,  # noqa: F401  (compare, on the client blueprint)
        client_delegation,  # noqa: F401  (handing over to a colleague, client blueprint)
        client_feedback,  # noqa: F401  (reopening points, on the client blueprint)
        client_language,  # noqa: F401  (the language switch, on the client blueprint)
        client_observer,  # noqa: F401  (observers' pages, on the client blueprint)
        client_renders,  # noqa: F401  (page images, on the client blueprint)
        client_step_up,  # noqa: F401  (the emailed code, on the client blueprint)
        clients,
        deliverable_edit,  # noqa: F401  (editing details, on the staff blueprint)
        finance,
        metrics,
        review_requests,
        staff,
        staff_compare,  # noqa: F401  (compare, on the staff blueprint)
        staff_delegation,  # noqa: F401  (confirming hand-overs, on the staff blueprint)
        staff_observers,  # noqa: F401  (observers, on the review_requests blueprint)
        staff_on_behalf,  # noqa: F401  (decisions recorded on behalf, on the staff blueprint)
        staff_renders,  # noqa: F401  (page images, on the staff blueprint)
        verify,
    )

    for module in (auth, staff, review_requests, clients, admin, client, finance, verify,
                   metrics, classification):
        app.register_blueprint(module.bp)
    # First of all before-request hooks: the intent must be set before anything reads.
    app.before_request_funcs.setdefault(None, []).insert(0, _declare_intent)
    app.before_request(refuse_unstorable_text)
    app.teardown_request(_end_intent)
    app.after_request(_security_headers)

    local_time.install(app)  # when() and |local_when in the zone of the page's reader
    agency.install(app)
    app.jinja_env.globals["whose_turn"] = whose_turn
    app.jinja_env.globals["policy_words"] = policy_words  # "Any one of 3 approvers; …"
    app.jinja_env.filters["describe_event"] = describe
    app.jinja_env.filters["device"] = describe_device  # "Safari 17 on iPhone"

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        abandon_transaction()
        return _error_page(exc.status, "That did not work", exc.message)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return _error_page(400, "Form expired",
                           "This form was missing its security token or the token had expired. "
                           "Go back, reload the page and try again. Nothing was saved.", ours=False)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        limit = app.config["MAX_UPLOAD_MB"]
        return _error_page(413, "File too large",
                           f"The file is larger than the {limit} MB limit. Nothing was saved.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        exc = _not_found_if_no_such_row(exc)
        stock = exc.description == type(exc).description  # werkzeug's words, not ours
        if is_api_url():  # the fields webargs found wrong, by name
            errors = (getattr(exc, "data", None) or {}).get("messages")
            return problem(exc.code or 500, exc.name, "" if stock and errors else
                           exc.description or "", errors=errors)
        return _error_page(exc.code or 500, exc.name, exc.description or "", ours=not stock)

    @app.errorhandler(OperationalError)
    def database_unavailable(exc: OperationalError):
        """The database went away (a restart, a failover): say so, and when to retry."""
        abandon_transaction()
        app.logger.warning("database unavailable: %s", exc.orig)
        response = app.make_response(_error_page(
            503, "Please try again in a moment",
            "The database is not answering right now. Nothing was saved; try again shortly.",
            UNAVAILABLE, ours=False))
        response.headers["Retry-After"] = "5"  # for API callers too
        return response

    @app.errorhandler(IntegrityError)
    def conflicting_write(exc: IntegrityError):
        """Two people saved the same unique thing at the same moment (a client's name, say):
        the domain checked first, but the other commit landed in between. Any other
        constraint failing is a bug, and answers as one."""
        abandon_transaction()
        constraint = _unique_constraint(exc)
        if constraint is None:
            app.logger.exception("write refused by a constraint")
            return server_error(exc)
        app.logger.warning("write refused by the unique constraint %s", constraint)
        return _error_page(409, _("Saved elsewhere first"),
                           _("Someone saved the same thing at the same moment, so nothing was "
                             "saved. Reload and try again."), ours=False)

    @app.errorhandler(500)
    def server_error(exc: Exception):
        abandon_transaction()
        return _error_page(500, "Something went wrong",
                           "An unexpected error happened and nothing was saved. Please try again.",
                           UNAVAILABLE, ours=False)
