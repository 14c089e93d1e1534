"""Staff record a decision a contact gave by phone, in a meeting or by email, on their
behalf: through the real staff page and SMTP sink (embedded mode: the in-process worker
sends the receipt and seals the certificate), read back from the database, the client's
page, the email and the certificate's text."""
from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from babel.dates import format_date
from pypdf import PdfReader
from sqlalchemy import func, select

from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    AuditEvent,
    Condition,
    Decision,
    DecisionOnBehalf,
    Deliverable,
    DeliverableState,
    IdentityCheck,
    OnBehalfChannel,
    Policy,
    RequestStatus,
    utcnow,
)
from portal.workflow.links import issue_token
from tests.conftest import SmtpSink, stored_path

S = DeliverableState
NOTE = "Contact phoned Sam at 10:05 and said: approved as it is."


@pytest.fixture
def mail(mail: SmtpSink, sealed: tuple[Path, Path]) -> SmtpSink:
    """This file's flows end in certificates: seal them too."""
    return mail


def _minute(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def _record(browser, approver: Approver, **fields: Any):
    form: dict[str, Any] = {
        "on_behalf_approver": str(approver.id), "sha256": approver.request.version.sha256,
        "choice": "approve", "channel": "phone", "given_at": _minute(utcnow()), "note": NOTE,
        "evidence": (io.BytesIO(sample_pdf("Call notes")), "call-notes.pdf")}
    form.update(fields)
    form = {k: v for k, v in form.items() if v is not None}
    return browser.post(f"/approvers/{approver.id}/on-behalf", form,
                        content_type="multipart/form-data")


def _signed_in(browser, staff):
    assert browser.login(staff.email).status_code == 302
    return browser


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _text(email) -> str:
    return email.get_body(preferencelist=("plain",)).get_content()


def _squash(value: str) -> str:
    return re.sub(r"\s+", " ", value)


def test_a_phone_approval_recorded_on_behalf_is_marked_everywhere(
        mail, app, make_deliverable, staff, browser, make_browser):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    contact = approver.contact
    response = _record(_signed_in(browser, staff), approver)
    assert response.status_code == 302, response.get_data(as_text=True)

    db.session.expire_all()
    d = db.session.get(Deliverable, d.id)
    request = d.requests[0]
    assert d.state == S.APPROVED and request.status == RequestStatus.APPROVED
    decision = db.session.scalars(select(Decision)).one()
    assert decision.identity == IdentityCheck.ON_BEHALF and decision.ip == ""
    row = db.session.scalars(select(DecisionOnBehalf)).one()
    assert (row.decision_id, row.recorded_by_id, row.channel, row.note) == (
        decision.id, staff.id, OnBehalfChannel.PHONE, NOTE)
    evidence = sample_pdf("Call notes")
    assert (row.evidence_name, row.evidence_type, row.evidence_size) == (
        "call-notes.pdf", "application/pdf", len(evidence))
    assert stored_path(app, row.evidence_key).read_bytes() == evidence

    day = format_date(row.given_at.date(), "d MMM y", locale="en")
    sentence = (f"Recorded by {staff.name} on behalf of {contact.name}, who approved by phone "
                f"on {day}.")
    # The audit trail: the decision's event names staff as the actor and carries the facts;
    # an event of its own says it in words.
    events = {e.verb: e for e in db.session.scalars(select(AuditEvent))}
    assert events["decision.approved"].actor == f"user:{staff.id}"
    assert '"channel":"phone"' in events["decision.approved"].detail
    assert events["decision.on_behalf"].actor == f"user:{staff.id}"
    staff_page = browser.get(f"/deliverables/{d.id}").get_data(as_text=True)
    assert sentence in staff_page and "call-notes.pdf" in staff_page
    assert "Decision recorded on the client&#39;s behalf" in staff_page
    download = browser.get(f"/on-behalf/{row.id}/evidence")
    assert download.status_code == 200 and download.data == evidence
    assert "attachment" in download.headers["Content-Disposition"]

    # The client's page says it under their decision.
    client = make_browser()
    assert client.get(f"/r/{issue_token(approver)}").status_code == 303
    assert sentence in client.get(client.review).get_data(as_text=True)

    # The receipt reaches the contact, naming who recorded it.
    mail.wait_for(1)
    receipts = [m for m in mail.to(contact.email) if "on your behalf" in m["Subject"]]
    assert len(receipts) == 1
    body = _text(receipts[0])
    assert sentence in _squash(body) and f"{staff.name} recorded a decision" in body
    assert receipts[0]["Reply-To"] == staff.email

    # The sealed certificate says it too.
    db.session.expire_all()
    certificate = db.session.get(Decision, decision.id).approver.request.certificate
    assert certificate is not None
    pdf = PdfReader(io.BytesIO(stored_path(app, certificate.storage_key).read_bytes()))
    text = _squash(" ".join(page.extract_text() or "" for page in pdf.pages))
    assert sentence in text, text[:2000]


def _file(content: bytes, name: str):
    return lambda: {"evidence": (io.BytesIO(content), name)}


@pytest.mark.parametrize(("fields", "status", "says"), [
    (lambda: {"note": "   "}, 422, "Write a note"),
    (lambda: {"given_at": _minute(utcnow() + timedelta(days=1))}, 422,
     "cannot be in the future"),
    (_file(b"just some words, not a scan", "notes.txt"), 415,
     "is not a file type we accept as evidence"),
    (_file(sample_pdf("x"), "scan.png"), 415, "does not match its name"),
    (_file(b"%PDF-1.4\n" + b"0" * (1024 * 1024 + 10), "big.pdf"), 413,
     "larger than the 1 MB limit"),
    (lambda: {"choice": "request_changes", "text": ""}, 422, "Write what should change"),
    (lambda: {"channel": "carrier pigeon"}, 422, "Say how the decision was given"),
], ids=["no note", "future", "wrong type", "wrong name", "too large", "changes without text",
        "no channel"])
def test_a_refused_recording_writes_nothing_says_why_and_keeps_the_input(
        app, make_deliverable, staff, browser, fields, status, says):
    app.config["EVIDENCE_MAX_MB"] = 1
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    store = Path(app.config["FILE_STORE"])
    files_before = sorted(p for p in store.rglob("*") if p.is_file())
    # The request was sent moments ago: its minute is a time the decision may have come.
    typed = {"given_at": _minute(d.open_request.sent_at), **fields()}
    response = _record(_signed_in(browser, staff), approver, **typed)
    page = response.get_data(as_text=True)
    assert response.status_code == status, page
    assert says in page
    assert (_count(Decision), _count(DecisionOnBehalf)) == (0, 0)
    assert sorted(p for p in store.rglob("*") if p.is_file()) == files_before
    db.session.expire_all()
    assert db.session.get(Approver, approver.id).status == ApproverStatus.INVITED
    # The form is open again with what was typed.
    assert 'name="on_behalf_approver"' in page and '<details class="on-behalf-form" open' in page
    assert f'value="{typed["given_at"]}"' in page
    if typed.get("note", NOTE).strip():
        assert NOTE in page


def test_the_given_time_cannot_be_in_the_future_even_by_a_minute(
        app, make_deliverable, staff, browser):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    response = _record(_signed_in(browser, staff), approver,
                       given_at=_minute(utcnow() + timedelta(minutes=2)))
    assert response.status_code == 422 and _count(Decision) == 0


def test_conditions_recorded_on_behalf_are_tracked_like_the_clients_own(
        mail, app, make_deliverable, staff, browser):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    response = _record(_signed_in(browser, staff), approver, choice="approve_with_conditions",
                       channel="meeting", evidence=None,
                       condition=["Swap the logo", "Fix the typo", ""])
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Deliverable, d.id).state == S.APPROVED_WITH_CONDITIONS
    assert [c.text for c in db.session.scalars(select(Condition).order_by(Condition.position))] \
        == ["Swap the logo", "Fix the typo"]
    row = db.session.scalars(select(DecisionOnBehalf)).one()
    assert row.channel == OnBehalfChannel.MEETING and row.evidence_key is None
    page = browser.get(f"/deliverables/{d.id}").get_data(as_text=True)
    assert "who approved with conditions in a meeting on" in page


def test_sequential_the_next_approver_is_invited_after_a_decision_on_behalf(
        mail, app, make_deliverable, staff, browser):
    d = make_deliverable(S.DELIVERED, policy=Policy.SEQUENTIAL, approvers=2)
    first, second = d.open_request.approvers
    assert second.status == ApproverStatus.QUEUED
    # Not the second's turn yet: refused, and said so.
    early = _record(_signed_in(browser, staff), second)
    assert early.status_code == 409 and "turn yet" in early.get_data(as_text=True)
    assert _record(browser, first).status_code == 302
    db.session.expire_all()
    first, second = db.session.get(Approver, first.id), db.session.get(Approver, second.id)
    assert first.status == ApproverStatus.APPROVED
    assert second.status == ApproverStatus.INVITED
    assert d.open_request.status == RequestStatus.OPEN
    mail.wait_for(2)
    assert any("review" in m["Subject"].lower() for m in mail.to(second.contact.email))


def test_a_german_contact_reads_it_in_german_on_the_page_in_the_receipt_and_certificate(
        mail, app, make_deliverable, staff, browser, make_browser):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    contact = approver.contact
    contact.language = "de"
    db.session.commit()
    assert _record(_signed_in(browser, staff), approver, evidence=None).status_code == 302
    german = f"Erfasst von {staff.name} im Namen von {contact.name}: telefonisch freigegeben am"

    client = make_browser()
    assert client.get(f"/r/{issue_token(approver)}").status_code == 303
    assert german in client.get(client.review).get_data(as_text=True)

    mail.wait_for(1)
    [receipt] = [m for m in mail.to(contact.email) if "in Ihrem Namen erfasst" in m["Subject"]]
    body = _squash(_text(receipt))
    assert german in body and f"{staff.name} hat eine Entscheidung in Ihrem Namen erfasst" in body

    db.session.expire_all()
    certificate = db.session.get(Approver, approver.id).request.certificate
    assert certificate is not None
    pdf = PdfReader(io.BytesIO(stored_path(app, certificate.storage_key).read_bytes()))
    assert german in _squash(" ".join(page.extract_text() or "" for page in pdf.pages))


def test_the_decision_webhook_carries_who_recorded_it_and_how(
        app, make_deliverable, staff, browser):
    import json

    from portal.models import WebhookDelivery, WebhookEndpoint

    db.session.add(WebhookEndpoint(url="http://127.0.0.1:9/hook", secret="s" * 32,
                                   allow_private_network=True))
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    assert _record(_signed_in(browser, staff), approver, evidence=None).status_code == 302
    [delivery] = db.session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.event_type == "decision.recorded")).all()
    on_behalf = json.loads(delivery.payload)["data"]["decision"]["on_behalf"]
    assert (on_behalf["recorded_by"]["name"], on_behalf["channel"], on_behalf["note"],
            on_behalf["evidence"]) == (staff.name, "phone", NOTE, None)


def test_nothing_is_recorded_or_kept_for_an_approver_who_handed_over(
        app, make_deliverable, staff, browser):
    """Their colleague decides now: staff are told so before any evidence is stored."""
    from portal.workflow import delegation

    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    asked = delegation.ask_to_delegate(approver, "Pat Colleague", "pat@client.example", "",
                                       utcnow())
    delegation.confirm(asked, staff, utcnow())
    db.session.commit()
    store = Path(app.config["FILE_STORE"])
    files_before = sorted(p for p in store.rglob("*") if p.is_file())
    response = _record(_signed_in(browser, staff), approver,
                       given_at=_minute(d.open_request.sent_at))
    assert response.status_code == 409
    assert "already handed over to a colleague" in response.get_data(as_text=True)
    assert (_count(Decision), _count(DecisionOnBehalf)) == (0, 0)
    assert sorted(p for p in store.rglob("*") if p.is_file()) == files_before
