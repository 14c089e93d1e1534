"""Optional step-up: a decision that needs a one-time code emailed to the approver.

Codes go out through the real SMTP sink (embedded mode: the in-process worker sends them)
and the tests read them from there, as the approver would.
"""
from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    Approver,
    AuditEvent,
    Client,
    Decision,
    DecisionCode,
    DeliverableState,
    IdentityCheck,
    OutboxMessage,
    OutboxStatus,
    Policy,
    RequestStatus,
    utcnow,
)
from portal.workflow import step_up
from portal.workflow.links import issue_token
from tests.conftest import SmtpSink, future, on_screen, stored_path

S = DeliverableState
CODE = re.compile(r"\b(\d{6})\b")


@pytest.fixture
def mail(mail: SmtpSink, sealed: tuple[Path, Path]) -> SmtpSink:
    """This file's flows end in certificates: seal them too."""
    return mail


def _text(email) -> str:
    return email.get_body(preferencelist=("plain",)).get_content()


def _asking_for_a_code(make_deliverable, approvers: int = 1):
    d = make_deliverable(S.DELIVERED, approvers=approvers)
    d.open_request.require_code = True
    db.session.commit()
    return d


def _open(browser, approver):
    assert browser.get(f"/r/{issue_token(approver)}").status_code == 303
    return browser.get(browser.review)


def _codes_sent_to(sink, address: str) -> list[str]:
    return [CODE.search(m["Subject"]).group(1) for m in sink.to(address)
            if "is your code" in m["Subject"]]


def _decide(browser):
    return browser.post(f"{browser.review}/decision", {"choice": "approve", "confirm": "1"})


def test_a_decision_needs_the_emailed_code_and_the_certificate_says_so(
        mail, app, make_deliverable, browser):
    d = _asking_for_a_code(make_deliverable)
    approver = d.open_request.approvers[0]
    email = approver.contact.email
    page = _open(browser, approver).get_data(as_text=True)
    assert "Email me a code" in page and f"{email[0]}***@{email.split('@')[1]}" in page
    assert 'class="choices"' not in page  # no decision before the code

    refused = _decide(browser)
    assert refused.status_code == 403
    assert "needs the code we email you" in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Decision.id))) == 0

    sent = browser.htmx_post(f"{browser.review}/code")
    assert sent.status_code == 200 and "We have emailed you a code" in sent.get_data(as_text=True)
    [code] = _codes_sent_to(mail, email)
    message = mail.to(email)[-1]
    assert f"Your code to decide on {d.title}" in _text(message) and code in _text(message)
    [row] = db.session.scalars(select(DecisionCode)).all()
    assert row.digest != code and len(row.digest) == 64 and code not in row.digest
    # Once sent, the stored copy of the email keeps no usable code either.
    stored = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.idempotency_key.startswith("decision-code:"))).one()
    assert stored.status == OutboxStatus.SENT
    assert all(code not in text and "••••••" in text
               for text in (stored.subject, stored.body_text, stored.body_html))

    wrong = "000000" if code != "000000" else "111111"
    answer = browser.htmx_post(f"{browser.review}/code/confirm", {"code": wrong})
    assert answer.status_code == 422
    assert "That code is not right" in answer.get_data(as_text=True)
    db.session.refresh(row)
    assert row.tries == 1 and row.confirmed_at is None  # the failed try was kept

    confirmed = browser.post(f"{browser.review}/code/confirm", {"code": f" {code[:3]} {code[3:]}"})
    assert confirmed.status_code == 303
    page = browser.get(browser.review).get_data(as_text=True)
    assert "Code confirmed: you can decide now." in page and 'class="choices"' in page

    assert _decide(browser).status_code == 303
    [decision] = db.session.scalars(select(Decision)).all()
    assert decision.identity == IdentityCheck.EMAIL_CODE
    db.session.refresh(row)
    assert row.used_at is not None
    verbs = db.session.scalars(select(AuditEvent.verb).order_by(AuditEvent.seq)).all()
    assert verbs.index("decision_code.sent") < verbs.index("decision_code.confirmed") \
        < verbs.index("decision.approved")
    certificate = db.session.get(Decision, decision.id).approver.request.certificate
    assert certificate is not None
    pdf = PdfReader(io.BytesIO(stored_path(app, certificate.storage_key).read_bytes()))
    flat = re.sub(r"\s+", "", "".join(page.extract_text() or "" for page in pdf.pages))
    assert f"Identityconfirmedbyaone-timecodesentto{email}" in flat
    assert "Identifiedbyapersonallink" not in flat
    # The same code cannot be used again: it is spent.
    again = browser.post(f"{browser.review}/code/confirm", {"code": code})
    assert again.status_code in (409, 422)


def test_five_wrong_tries_use_a_code_up(app, make_deliverable):
    d = _asking_for_a_code(make_deliverable)
    approver = d.open_request.approvers[0]
    step_up.send_code(approver, seen_sha256=on_screen(approver))
    db.session.commit()
    code_row = db.session.scalars(select(DecisionCode)).one()
    answers = [step_up.confirm_code(approver, "not-it", seen_sha256=on_screen(approver))
               for _ in range(step_up.MAX_TRIES)]
    assert answers == [step_up.CodeCheck.WRONG] * 4 + [step_up.CodeCheck.NO_TRIES_LEFT]
    db.session.commit()
    # Even the right code no longer works: only a new code does.
    code_row.digest = step_up._digest(approver.id, "123456")
    assert step_up.confirm_code(approver, "123456", seen_sha256=on_screen(approver)) \
        == step_up.CodeCheck.NO_TRIES_LEFT
    assert not step_up.state(approver).confirmed


def test_a_code_lasts_ten_minutes_and_a_new_one_replaces_it(app, make_deliverable):
    d = _asking_for_a_code(make_deliverable)
    approver = d.open_request.approvers[0]
    start = utcnow()
    step_up.send_code(approver, seen_sha256=on_screen(approver), now=start)
    first = db.session.scalars(select(DecisionCode)).one()
    first.digest = step_up._digest(approver.id, "111111")
    late = start + step_up.CODE_TTL + timedelta(seconds=1)
    assert step_up.confirm_code(approver, "111111", seen_sha256=on_screen(approver),
                                now=late) == step_up.CodeCheck.EXPIRED
    step_up.send_code(approver, seen_sha256=on_screen(approver), now=late)
    db.session.commit()
    db.session.refresh(first)
    assert first.expires_at <= late  # the older code stopped working


def test_codes_are_rate_limited_per_approver(app, make_deliverable):
    d = _asking_for_a_code(make_deliverable)
    approver = d.open_request.approvers[0]
    for _ in range(step_up.CODES_PER_HOUR):
        step_up.send_code(approver, seen_sha256=on_screen(approver))
    with pytest.raises(step_up.InvalidInput, match="codes in the last hour"):
        step_up.send_code(approver, seen_sha256=on_screen(approver))


def test_a_request_without_step_up_offers_no_code(app, make_deliverable, browser):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    page = _open(browser, approver).get_data(as_text=True)
    assert "Email me a code" not in page and 'class="choices"' in page
    assert browser.post(f"{browser.review}/code").status_code == 409
    assert _decide(browser).status_code == 303
    assert db.session.scalars(select(Decision)).one().identity == IdentityCheck.LINK


def test_the_client_default_and_the_delivery_form_decide_per_request(
        app, make_browser, make_deliverable, staff):
    d = make_deliverable(S.READY)
    client_id = d.project.client_id
    sam = make_browser()
    sam.login(staff.email)
    assert sam.post(f"/clients/{client_id}/code-default", {"require_code": "1"}).status_code \
        == 302
    assert db.session.get(Client, client_id).require_code_default is True
    page = sam.get(f"/deliverables/{d.id}").get_data(as_text=True)
    assert re.search(r'name="require_code" value="1" checked', page)
    contact = d.project.client.contacts[0]
    delivered = sam.post(f"/deliverables/{d.id}/deliver", {
        "contact_id": str(contact.id), "policy": Policy.PARALLEL.value,
        "due_date": future(7).isoformat(), "require_code": "1"})
    assert delivered.status_code in (302, 303)
    request = d.open_request
    assert request.status == RequestStatus.OPEN and request.require_code is True
    assert "decisions need an emailed code" in sam.get(f"/deliverables/{d.id}").get_data(
        as_text=True)

    # Unticked at delivery, this request does not ask, whatever the client's default.
    other = make_deliverable(S.READY, project=d.project)
    sam.post(f"/deliverables/{other.id}/deliver", {
        "contact_id": str(contact.id), "policy": Policy.PARALLEL.value,
        "due_date": future(7).isoformat()})
    assert other.open_request.require_code is False
    assert db.session.scalar(select(func.count(Approver.id))) == 2
