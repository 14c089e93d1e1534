"""The database dropping a request's connection at the worst moment: after the page is
drawn, before the request ends (a restart, a failover, an idle-connection killer).

On PostgreSQL only: SQLite has no server to drop the connection.
"""
from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from flask import Flask, Response
from sqlalchemy import event, func, insert, select
from sqlalchemy.engine import make_url

from portal.extensions import db
from portal.models import Client, Comment, DeliverableState
from portal.workflow.links import issue_token


def _killer(app: Flask) -> Callable[[], None]:
    """Ends this request's own database connection from outside, as a restart would, and
    waits until the server has done it."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)

    def kill() -> None:
        pid = db.session.connection().connection.dbapi_connection.info.backend_pid
        with psycopg.connect(conninfo, autocommit=True) as other:
            assert other.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()[0]
    return kill


@pytest.fixture
def postgres_app(app: Flask) -> Flask:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("SQLite has no server that could drop the connection")
    return app


def test_a_connection_dropped_after_the_page_is_drawn_still_answers_with_the_page(
        postgres_app, make_deliverable, make_browser):
    approver = make_deliverable(DeliverableState.DELIVERED).open_request.approvers[0]
    kill, dropping = _killer(postgres_app), {"on": False}

    @postgres_app.after_request  # before the app's first request, as Flask requires
    def drop_connection(response: Response) -> Response:
        if dropping["on"]:
            kill()  # the transaction the page read in is still open: its ROLLBACK will fail
        return response

    client = make_browser()
    assert client.get(f"/r/{issue_token(approver)}").status_code in (302, 303)
    dropping["on"] = True
    page = client.get(client.review)
    assert page.status_code == 200
    assert "Homepage v3" in page.get_data(as_text=True)

    # A post whose commit landed before the connection went: the client is told it did.
    posted = client.post(f"{client.review}/comments", data={"body": "Looks good to me"})
    assert posted.status_code == 303
    dropping["on"] = False
    assert db.session.scalar(select(func.count()).select_from(Comment)
                             .where(Comment.body == "Looks good to me")) == 1
    # The pool hands out a working connection next time.
    assert client.get(client.review).status_code == 200


def test_a_name_taken_at_the_same_moment_is_a_clear_409_not_a_500(postgres_app, api):
    """The domain checks the name is free; another commit takes it just before ours is
    written: the unique constraint refuses, and the caller is told plainly."""
    taken = {"done": False}

    def someone_else_first(session, _context, _instances) -> None:
        if not taken["done"] and any(isinstance(o, Client) for o in session.new):
            taken["done"] = True
            with db.engine.begin() as other:
                other.execute(insert(Client.__table__).values(name="Acme Ltd"))

    event.listen(db.session, "before_flush", someone_else_first)
    try:
        answer = api.post("/api/v1/clients", json={"name": "Acme Ltd", "contacts": []})
    finally:
        event.remove(db.session, "before_flush", someone_else_first)
    assert taken["done"]
    assert answer.status_code == 409, answer.get_data(as_text=True)
    assert answer.mimetype == "application/problem+json"
    assert "at the same moment" in answer.get_json()["detail"]
    assert db.session.scalar(select(func.count()).select_from(Client)) == 1  # theirs only


def test_a_retry_racing_the_first_call_gets_the_first_answer_not_a_conflict(postgres_app,
                                                                             api):
    """The client times out and retries with the same Idempotency-Key while the first call
    is still running: the retry commits first; the first call, refused by the unique name
    the retry just took, answers what the retry answered."""
    call = {"json": {"name": "Globex"}, "headers": {"Idempotency-Key": "create-globex"}}
    retry: dict[str, Any] = {}

    def the_retry_lands_first(session, _context, _instances) -> None:
        if not retry and any(isinstance(o, Client) for o in session.new):
            retry["started"] = True  # the retry's own flush passes through here too
            worker = threading.Thread(target=lambda: retry.update(
                answer=contextvars.Context().run(
                    api.client.post, "/api/v1/clients",
                    headers={"Authorization": f"Bearer {api.secret}", **call["headers"]},
                    json=call["json"])))
            worker.start()
            worker.join(30)

    event.listen(db.session, "before_flush", the_retry_lands_first)
    try:
        first = api.post("/api/v1/clients", **call)
    finally:
        event.remove(db.session, "before_flush", the_retry_lands_first)
    assert retry["answer"].status_code == 201
    assert first.status_code == 201, first.get_data(as_text=True)
    assert first.headers.get("Idempotent-Replayed") == "true"
    assert first.get_json() == retry["answer"].get_json()
    assert db.session.scalar(select(func.count()).select_from(Client)) == 1
