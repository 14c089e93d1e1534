"""With LOG_FORMAT=json every log line is one JSON object carrying a request id, the id
follows a request into the jobs it enqueued (the in-process runner's and a real RQ
worker's), and no password, review-link token, API token or email body reaches a line."""
from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from rq import Queue

from portal.extensions import db
from portal.models import DeliverableState
from portal.notifications.queue import QUEUE_NAME, after_commit, job_queue
from portal.ops.logs import HANDLER_MARK, HEADER, accepted_request_id
from portal.workflow.links import issue_token
from tests.conftest import PASSWORD, Browser
from tests.traffic import postgresql_only  # noqa: F401

S = DeliverableState


@pytest.fixture
def json_logs(app_config: dict[str, Any]) -> dict[str, Any]:
    """Request before `app`: the app's logs as JSON."""
    app_config["LOG_FORMAT"] = "json"
    return app_config


@pytest.fixture
def captured(json_logs, app) -> Iterator[io.StringIO]:
    """Every line the app's log handler writes, from here to the end of the test."""
    root = logging.getLogger()
    [handler] = [h for h in root.handlers if getattr(h, HANDLER_MARK, False)]
    buffer, level = io.StringIO(), root.level
    handler.setStream(buffer)
    yield buffer
    root.removeHandler(handler)  # the next test's app sets up its own
    root.setLevel(level)


def lines_of(buffer: io.StringIO) -> list[dict[str, Any]]:
    """Each line parsed as JSON (a line that is not fails the test)."""
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_ids_from_callers_are_taken_only_when_safe():
    assert accepted_request_id("edge-7f3a.42") == "edge-7f3a.42"
    for unsafe in ("", None, "a b", "x\ny", "edge-7\n", "<script>", "a" * 129, "é"):
        generated = accepted_request_id(unsafe)
        assert generated != unsafe and len(generated) == 32


def test_no_secret_reaches_a_json_log_line(mail, sealed, captured, app, make_deliverable,
                                           make_api, staff):
    d = make_deliverable(S.DELIVERED)
    token = issue_token(d.open_request.approvers[0])
    answers = []

    signing_in = Browser(app.test_client())
    answers.append(signing_in.login(staff.email))  # the password, in a form
    assert answers[-1].status_code == 302
    client = Browser(app.test_client())
    answers.append(client.get(f"/r/{token}"))  # the review-link token, in the path
    answers.append(client.get(client.review))
    answers.append(client.post(f"{client.review}/decision", {"choice": "approve"},
                               headers={HEADER: "edge-decision-1"}))  # sends an email
    assert answers[-1].status_code == 303
    api = make_api(staff)
    answers.append(api.get("/api/v1/me"))  # the API token, in a header
    assert answers[-1].status_code == 200
    # A careless line that names the link is redacted on its way out.
    logging.getLogger("portal.careless").warning("client opened %s", f"/r/{token}")
    mail.wait_for(1)

    [receipt] = [m for _, m in mail.messages if m["Subject"].startswith("Your decision")]
    body = receipt.get_body(preferencelist=("plain",)).get_content()
    secrets = {"password": PASSWORD, "review token": token,
               "token's first part": token.split(".")[0], "API token": api.secret,
               "email body": body.strip().splitlines()[0], "email body line":
               next(line for line in body.splitlines() if len(line) > 40)}
    lines = lines_of(captured)
    raw = captured.getvalue()
    for what, secret in secrets.items():
        assert secret not in raw, f"the {what} reached a log line"
    assert all("request_id" in line and line["message"] for line in lines)

    # One line per request (the browser's own GETs for a CSRF token among them), under
    # the id the response carried back.
    answered = [line for line in lines if line["logger"] == "portal.request"]
    by_id = {line["request_id"]: line for line in answered}
    for answer in answers:
        line = by_id[answer.headers[HEADER]]
        assert line["status"] == answer.status_code and line["duration_ms"] >= 0
    assert by_id["edge-decision-1"]["endpoint"] == "client.decide"  # the caller's id, kept
    assert {line["endpoint"] for line in answered} >= {"auth.login", "client.open_link"}
    assert all(line["request_id"] != "-" for line in answered)
    assert len({line["request_id"] for line in answered}) == len(answered)
    [careless] = [line for line in lines if line["logger"] == "portal.careless"]
    assert careless["message"] == "client opened /r/[token]"


def test_a_failing_write_logs_neither_its_values_nor_a_link_in_its_traceback(
        captured, app, make_deliverable):
    """A database error's text would repeat the statement's values (an email body with its
    review link); the engine hides them, and a traceback is redacted like a message."""
    from sqlalchemy import insert

    from portal.models import OutboxMessage

    d = make_deliverable(S.DELIVERED)
    token = issue_token(d.open_request.approvers[0])
    body = f"Please review: http://portal.test/r/{token} — only for Jane"
    row = {"idempotency_key": "twice", "to_addr": "jane@client.test", "subject": "s",
           "body_text": body, "body_html": body}
    db.session.execute(insert(OutboxMessage), [row])
    db.session.commit()
    try:
        db.session.execute(insert(OutboxMessage), [row])  # the same key: refused
        db.session.commit()
    except Exception:
        db.session.rollback()
        logging.getLogger("portal.test").exception("the write failed")
    try:
        raise RuntimeError(f"could not send {body}")
    except RuntimeError:
        logging.getLogger("portal.test").exception("the send failed")
    [write, send] = [line for line in lines_of(captured) if line["logger"] == "portal.test"]
    assert "IntegrityError" in write["exc_info"] and "hidden due to hide_parameters" in (
        write["exc_info"])
    assert "/r/[token]" in send["exc_info"]
    assert "only for Jane" not in write["exc_info"]  # the values stayed out
    assert token not in captured.getvalue()


def test_the_in_process_runner_carries_the_request_id(captured, app):
    with app.test_request_context(headers={HEADER: "edge-runner-7"}):
        app.preprocess_request()  # the request's hooks: its id is set
        after_commit("logging.warning", "job ran for %s", "the runner",
                     job_id="ops-log-probe")
        db.session.commit()  # the job goes to the runner now, and the test waits for it
    [ran] = [line for line in lines_of(captured) if line["message"].startswith("job ran")]
    assert ran["request_id"] == "edge-runner-7"
    assert ran["message"] == "job ran for the runner"


@pytest.mark.usefixtures("postgresql_only")  # a worker process: run once, not per backend
def test_a_worker_logs_a_job_under_the_id_of_the_request_that_queued_it(
        json_logs, jobs_config, app, run_worker, monkeypatch, captured):
    monkeypatch.setenv("LOG_FORMAT", "json")  # the worker process reads the environment
    with app.test_request_context(headers={HEADER: "edge-worker-9"}):
        app.preprocess_request()
        after_commit("logging.warning", "job ran in %s", "the worker", job_id="ops-log-probe")
        db.session.commit()
        queue: Queue = job_queue()
        assert queue.fetch_job("ops-log-probe").meta == {"request_id": "edge-worker-9"}
    assert queue.name == QUEUE_NAME

    output = run_worker.burst()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    [ran] = [line for line in lines if line["message"] == "job ran in the worker"]
    assert ran["request_id"] == "edge-worker-9"
    # RQ names the job as it takes it from the queue, before the job's meta is ours to
    # read; every line from then on carries the id.
    about_the_job = [line for line in lines if "ops-log-probe" in line["message"]
                     and f"{QUEUE_NAME}: logging.warning(" not in line["message"]]
    assert about_the_job and all(line["request_id"] == "edge-worker-9"
                                 for line in about_the_job)
    assert all("request_id" in line for line in lines)
