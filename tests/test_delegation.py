"""Hand-over ("I'm not the right person"): an approver names a colleague, staff confirm it
(or the client's setting lets it through), and the colleague decides in the same position.

Everything goes through the real pages: the client's review page and hand-over form (links
taken from real emails in the SMTP sink), staff's deliverable and client pages; the
certificate is read back with pypdf. SQLite and PostgreSQL.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    AuditEvent,
    Contact,
    Decision,
    Delegation,
    DelegationStatus,
    Deliverable,
    DeliverableState,
    RequestStatus,
    ReviewRequest,
)
from portal.workflow.policies import describe
from portal.workflow.turns import whose_turn
from tests.conftest import SmtpSink, future, stored_path

S = DeliverableState
LINK = re.compile(r"http://portal\.test(/r/[\w.\-]+)")
PAT = {"name": "Pat Colleague", "email": "pat@client.example",
       "note": "Pat runs the website and knows the brand rules."}


@pytest.fixture
def mail(mail: SmtpSink, sealed: tuple[Path, Path]) -> SmtpSink:
    """This file's flows end in certificates: seal them too."""
    return mail


def _text(email: Any) -> str:
    return email.get_body(preferencelist=("plain",)).get_content()


def _words(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'")
                    .replace("&amp;", "&").split())


class Person:
    """One approver with their own browser, arriving from the link in an email."""

    def __init__(self, browser: Any, mail: SmtpSink, address: str, subject: str) -> None:
        self.browser, self.address = browser, address
        emails = [m for m in mail.to(address) if subject in m["Subject"]]
        assert emails, f"no email with {subject!r} to {address}"
        link = LINK.search(_text(emails[-1])).group(1)
        assert browser.get(link).status_code == 303
        self.page = browser.review

    def html(self) -> str:
        return self.browser.get(self.page).get_data(as_text=True)

    def decide(self, choice: str = "approve", text: str = ""):
        self.browser.get(self.page)  # what is on screen, as the form would send it
        return self.browser.post(f"{self.page}/decision", {"choice": choice, "text": text})

    def hand_over(self, **form: str):
        assert self.browser.get(f"{self.page}/handover").status_code == 200
        return self.browser.post(f"{self.page}/handover", form)


def _delivered(make_client, make_project, make_deliverable, browser, staff, policy: str,
               approvers: int, **fields: str) -> Deliverable:
    project = make_project(make_client(contacts=approvers))
    d = make_deliverable(S.READY, project=project)
    browser.login(staff.email)
    form = MultiDict([("contact_id", str(c.id)) for c in project.client.contacts])
    form.update({"policy": policy, "due_date": future(7).isoformat(), **fields})
    assert browser.post(f"/deliverables/{d.id}/deliver", form).status_code == 302
    return d


def _request(d: Deliverable) -> ReviewRequest:
    return db.session.scalars(select(ReviewRequest).where(
        ReviewRequest.version_id == d.current_version.id)).one()


def _people(make_browser, mail, d: Deliverable) -> list[Person]:
    return [Person(make_browser(), mail, c.email, "please review")
            for c in d.project.client.contacts]


def _only(model: Any) -> Any:
    [row] = db.session.scalars(select(model)).all()
    return row


def _count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _events(verb: str) -> list[dict[str, Any]]:
    return [json.loads(e.detail) for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.verb == verb).order_by(AuditEvent.seq))]


def _pdf_words(app, request: ReviewRequest) -> str:
    db.session.refresh(request)
    assert request.certificate is not None, "no certificate was issued"
    pdf = stored_path(app, request.certificate.storage_key).read_bytes()
    return " ".join(" ".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf)).pages)
                    .split())


def test_asked_confirmed_by_staff_then_the_colleague_approves_and_the_record_says_so(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _delivered(make_client, make_project, make_deliverable, browser, staff, "parallel", 2)
    request = _request(d)
    jane, john = _people(make_browser, mail, d)
    jane_contact, john_contact = (c for c in d.project.client.contacts)

    # The review page offers the hand-over; the form works without JavaScript.
    assert "I'm not the right person" in jane.html()
    asked = jane.hand_over(**PAT)
    assert asked.status_code == 303
    page = _words(jane.html())
    assert "You asked to hand this review over to Pat Colleague. The team will confirm it" in page
    assert 'value="approve"' in jane.browser.get(f"{jane.page}?choice=approve") \
        .get_data(as_text=True)  # until then jane can still decide
    delegation = _only(Delegation)
    assert (delegation.status, delegation.name, delegation.email, delegation.note) == (
        DelegationStatus.REQUESTED, "Pat Colleague", "pat@client.example", PAT["note"])

    # The owner is asked to confirm, by email and on the deliverable page.
    [asking] = [m for m in mail.to(staff.email) if "Please confirm" in m["Subject"]]
    assert f"{jane_contact.name} says they are not the right person" in _text(asking)
    assert PAT["note"] in _text(asking)
    staff_page = _words(browser.get(f"/deliverables/{d.id}").get_data(as_text=True))
    assert (f"{jane_contact.name} asks to hand request #{request.id} over to Pat Colleague "
            "(pat@client.example)") in staff_page
    assert "Waiting for your confirmation" in staff_page
    assert browser.post(f"/delegations/{delegation.id}/confirm").status_code == 302

    # The colleague is an approver in the same position; jane is handed over.
    db.session.refresh(request)
    original = db.session.get(Approver, delegation.from_approver_id)
    colleague = db.session.get(Approver, delegation.to_approver_id)
    assert original.status == ApproverStatus.DELEGATED
    assert (colleague.position, colleague.status) == (original.position, ApproverStatus.INVITED)
    assert [a.contact.name for a in request.approvers] == ["Pat Colleague", john_contact.name]
    assert describe(request) == "All 2 approvers, at once"
    assert (delegation.status, delegation.decided_by_id) == (DelegationStatus.CONFIRMED,
                                                             staff.id)
    assert db.session.scalar(select(Contact).where(Contact.email == PAT["email"])) \
        .client_id == d.project.client_id

    # Jane is told, and her link no longer decides; the page says to whom she handed over.
    [told] = [m for m in mail.to(jane_contact.email) if "now decides" in m["Subject"]]
    assert "Pat Colleague (pat@client.example) now decides" in _text(told)
    gone = jane.browser.get(jane.page)
    assert gone.status_code == 410
    assert "You handed this review over to Pat Colleague" in _words(gone.get_data(as_text=True))
    assert jane.decide("approve").status_code == 403
    assert _count(Decision) == 0

    # Pat's invitation carries the note and a link; Pat approves, then John.
    [invitation] = mail.to(PAT["email"])
    assert f"{jane_contact.name} has handed the review of" in _text(invitation)
    assert PAT["note"] in _text(invitation)
    pat = Person(make_browser(), mail, PAT["email"], "asks you to review")
    assert "Waiting for your decision" in _words(pat.html())
    assert pat.decide("approve").status_code == 303
    assert john.decide("approve").status_code == 303
    db.session.refresh(request)
    assert request.status == RequestStatus.APPROVED and d.state == S.APPROVED
    assert original.status == ApproverStatus.DELEGATED  # not withdrawn by the close

    # The audit trail and the certificate say who handed over to whom.
    [requested] = _events("delegation.requested")
    [confirmed] = _events("delegation.confirmed")
    assert (requested["by"], requested["to"], requested["direct"]) == (
        jane_contact.name, "Pat Colleague", False)
    assert (confirmed["by"], confirmed["to"], confirmed["direct"]) == (
        jane_contact.name, "Pat Colleague", False)
    words = _pdf_words(app, request)
    assert (f"Delegated by {jane_contact.name} ({jane_contact.email}) to Pat Colleague "
            "(pat@client.example)") in words
    assert f"confirmed by {staff.name}" in words
    assert "Handed over to a colleague" in words  # the audit trail's line
    # The certificate goes to those who decided, not to the one who handed over.
    assert [m for m in mail.to(PAT["email"]) if "certificate" in m["Subject"].lower()]
    assert not [m for m in mail.to(jane_contact.email)
                if "certificate" in m["Subject"].lower()]


def test_the_client_setting_lets_the_colleague_decide_at_once(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser,
        make_user):
    d = _delivered(make_client, make_project, make_deliverable, browser, staff, "parallel", 1)
    client = d.project.client
    assert "Contacts may hand a review over" in browser.get(
        f"/clients/{client.id}").get_data(as_text=True)
    assert browser.post(f"/clients/{client.id}/direct-handover",
                        {"direct_handover": "1"}).status_code == 302
    db.session.refresh(client)
    assert client.direct_handover is True
    [jane] = _people(make_browser, mail, d)
    from portal.models import Role, WebhookDelivery
    from portal.notifications import webhooks

    admin = make_user(Role.ADMIN, email="ada@agency.example")
    webhooks.register(admin, "http://127.0.0.1:9/hook", "receiver", allow_private=True)
    db.session.commit()

    done = jane.hand_over(name="Pat Colleague", email="Pat@Client.example", note="")
    assert done.status_code == 303
    [hook] = db.session.scalars(select(WebhookDelivery).where(
        WebhookDelivery.event_type == "request.delegated")).all()
    sent = json.loads(hook.payload)["data"]
    assert sent["delegation"]["from"]["name"] == client.contacts[0].name
    assert sent["delegation"]["to"] == {"name": "Pat Colleague",
                                        "email": "pat@client.example"}
    assert (sent["delegation"]["direct"], sent["delegation"]["confirmed_by"]) == (True, None)
    assert [a["name"] for a in sent["approvers"]] == ["Pat Colleague"]
    delegation = _only(Delegation)
    assert (delegation.status, delegation.decided_by_id) == (DelegationStatus.CONFIRMED, None)
    assert jane.browser.get(jane.page).status_code == 410  # her link is handed over
    [direct] = _events("delegation.confirmed")
    assert direct["direct"] is True
    [owner_told] = [m for m in mail.to(staff.email) if "handed" in m["Subject"]]
    assert "without your confirmation" in _text(owner_told)
    assert not [m for m in mail.to(staff.email) if "Please confirm" in m["Subject"]]

    pat = Person(make_browser(), mail, "pat@client.example", "asks you to review")
    assert pat.decide("approve").status_code == 303
    request = _request(d)
    assert request.status == RequestStatus.APPROVED
    assert "directly, as the client allows" in _pdf_words(app, request)


def test_declined_the_approver_still_decides_and_is_told(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _delivered(make_client, make_project, make_deliverable, browser, staff, "parallel", 1)
    [jane] = _people(make_browser, mail, d)
    assert jane.hand_over(**PAT).status_code == 303
    delegation = _only(Delegation)
    assert browser.post(f"/delegations/{delegation.id}/decline").status_code == 302
    db.session.refresh(delegation)
    assert delegation.status == DelegationStatus.DECLINED
    assert delegation.decided_by_id == staff.id
    contact = d.project.client.contacts[0]
    [told] = [m for m in mail.to(contact.email) if "still needed" in m["Subject"]]
    assert "your link works as before" in _text(told)
    assert not mail.to(PAT["email"])
    # Declined once: confirming it now is refused, and nothing changes.
    refused = browser.post(f"/delegations/{delegation.id}/confirm")
    assert refused.status_code == 409
    assert "already declined" in _words(refused.get_data(as_text=True))
    assert "I'm not the right person" in jane.html()  # she may ask again
    assert jane.decide("approve").status_code == 303
    assert _request(d).status == RequestStatus.APPROVED


@pytest.mark.parametrize(("form", "message"), [
    ({"name": "Pat Colleague", "email": ""}, "Enter your colleague's email address."),
    ({"name": "Pat Colleague", "email": "pat-at-client"}, "is not a valid email address"),
    ({"name": "", "email": "pat@client.example"}, "Your colleague's name is required."),
    ({"name": "Myself", "email": "SELF"}, "That is your own address"),
    ({"name": "John", "email": "OTHER"}, "is already asked to decide on this request."),
])
def test_bad_input_is_refused_clearly_and_what_was_typed_stays(
        form, message, mail, app, browser, staff, make_client, make_project, make_deliverable,
        make_browser):
    d = _delivered(make_client, make_project, make_deliverable, browser, staff, "parallel", 2)
    jane, _john = _people(make_browser, mail, d)
    mine, other = (c.email for c in d.project.client.contacts)
    form = {**form, "email": {"SELF": mine, "OTHER": other}.get(form["email"], form["email"]),
            "note": "Keep this note"}
    refused = jane.hand_over(**form)
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert message in _words(html)
    assert 'value="' + form["email"] + '"' in html and "Keep this note" in html
    assert _count(Delegation) == 0
    assert _events("delegation.requested") == []


def test_after_deciding_or_asking_twice_it_is_refused(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _delivered(make_client, make_project, make_deliverable, browser, staff, "parallel", 2)
    jane, john = _people(make_browser, mail, d)
    assert jane.hand_over(**PAT).status_code == 303
    again = jane.browser.post(f"{jane.page}/handover", {**PAT, "email": "sam@client.example"})
    assert again.status_code == 409
    assert "You already asked to hand this over to Pat Colleague" in _words(
        again.get_data(as_text=True))
    assert john.decide("approve").status_code == 303
    late = john.browser.post(f"{john.page}/handover", PAT)
    assert late.status_code == 409
    assert "The decision is recorded" in _words(late.get_data(as_text=True))
    assert "I'm not the right person" not in john.html()
    assert _count(Delegation) == 1


def test_sequential_the_colleague_keeps_the_position_and_waits_for_their_turn(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _delivered(make_client, make_project, make_deliverable, browser, staff, "sequential", 2)
    request = _request(d)
    first, second = d.project.client.contacts
    jane = Person(make_browser(), mail, first.email, "please review")
    # The second approver, not yet asked, hands over ahead of their turn (found through
    # their own approver row: they get their link only when it is their turn).
    queued = next(a for a in request.approvers if a.contact_id == second.id)
    assert queued.status == ApproverStatus.QUEUED
    from portal.models import utcnow
    from portal.workflow import delegation as handover

    asked = handover.ask_to_delegate(queued, "Pat Colleague", PAT["email"], "", utcnow())
    db.session.commit()
    assert browser.post(f"/delegations/{asked.id}/confirm").status_code == 302
    db.session.refresh(request)
    pat_row = db.session.get(Approver, asked.to_approver_id)
    assert (pat_row.position, pat_row.status) == (queued.position, ApproverStatus.QUEUED)
    assert [a.contact.name for a in request.approvers] == [first.name, "Pat Colleague"]
    assert not mail.to(PAT["email"])  # not their turn yet
    assert whose_turn(d).label == f"Waiting for {first.name}"

    assert jane.decide("approve").status_code == 303
    db.session.refresh(pat_row)
    assert pat_row.status == ApproverStatus.INVITED
    pat = Person(make_browser(), mail, PAT["email"], "please review")
    assert pat.decide("approve").status_code == 303
    db.session.refresh(request)
    assert request.status == RequestStatus.APPROVED


def test_k_of_n_counts_the_colleague_in_place_of_the_one_who_handed_over(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _delivered(make_client, make_project, make_deliverable, browser, staff, "at_least", 3,
                   required_approvals="2")
    request = _request(d)
    jane, john, ann = _people(make_browser, mail, d)
    jane_name, john_name, ann_name = (c.name for c in d.project.client.contacts)
    assert jane.hand_over(**PAT).status_code == 303
    assert browser.post(f"/delegations/{_only(Delegation).id}/confirm").status_code == 302
    db.session.refresh(request)
    assert describe(request) == "At least 2 of 3 approvers"
    assert whose_turn(d).label == "Waiting for 2 more approvals (2 of 3)"
    pat = Person(make_browser(), mail, PAT["email"], "asks you to review")
    assert "2 of the 3 of you need to approve" in _words(pat.html())
    assert pat.decide("approve").status_code == 303
    assert whose_turn(d).label == "Waiting for 1 more approval (2 of 3)"
    assert john.decide("approve").status_code == 303
    db.session.refresh(request)
    assert request.status == RequestStatus.APPROVED
    statuses = {a.contact.name: a.status for a in request.all_approvers}
    assert statuses == {jane_name: ApproverStatus.DELEGATED, "Pat Colleague":
                        ApproverStatus.APPROVED, john_name: ApproverStatus.APPROVED,
                        ann_name: ApproverStatus.WITHDRAWN}
    # Only Ann hears her decision is no longer needed; Jane already handed over.
    assert [m for m in mail.to(ann.address) if "No decision needed" in m["Subject"]]
    assert not [m for m in mail.to(jane.address) if "No decision needed" in m["Subject"]]


def test_an_observer_of_the_request_cannot_be_named_to_decide(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    from portal.models import utcnow
    from portal.workflow.observers import add_observer

    d = _delivered(make_client, make_project, make_deliverable, browser, staff, "parallel", 1)
    [jane] = _people(make_browser, mail, d)
    watcher = Contact(client=d.project.client, name="Wendy Watcher",
                      email="wendy@client.example")
    db.session.add(watcher)
    add_observer(_request(d), watcher, False, staff, utcnow())
    db.session.commit()
    refused = jane.hand_over(name="Wendy Watcher", email="wendy@client.example", note="")
    assert refused.status_code == 422
    assert ("wendy@client.example follows this request as an observer, so they cannot also "
            "decide on it.") in _words(refused.get_data(as_text=True))
    assert _count(Delegation) == 0


def test_the_domain_refuses_a_decision_from_the_one_who_handed_over(
        mail, app, staff, make_deliverable):
    """Beyond the dead link: record_decision itself refuses a handed-over approver, even
    from a caller that skipped the link check, and writes nothing."""
    from portal.errors import IllegalTransition
    from portal.models import Outcome, utcnow
    from portal.workflow import delegation as handover
    from portal.workflow import record_decision

    d = make_deliverable(S.DELIVERED)
    [original] = d.open_request.approvers
    asked = handover.ask_to_delegate(original, "Pat Colleague", PAT["email"], "", utcnow())
    handover.confirm(asked, staff, utcnow())
    db.session.commit()
    with pytest.raises(IllegalTransition, match="You handed this request over"):
        record_decision(original, Outcome.APPROVED, seen_sha256=d.current_version.sha256)
    db.session.rollback()
    assert _count(Decision) == 0
    with pytest.raises(IllegalTransition, match="already handed over"):
        handover.ask_to_delegate(original, "Eve", "eve@client.example", "", utcnow())


def test_two_hand_overs_to_the_same_colleague_the_second_is_refused_on_confirming(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _delivered(make_client, make_project, make_deliverable, browser, staff, "parallel", 2)
    jane, john = _people(make_browser, mail, d)
    assert jane.hand_over(**PAT).status_code == 303
    assert john.hand_over(**PAT).status_code == 303
    first, second = db.session.scalars(select(Delegation).order_by(Delegation.id)).all()
    assert browser.post(f"/delegations/{first.id}/confirm").status_code == 302
    refused = browser.post(f"/delegations/{second.id}/confirm")
    assert refused.status_code == 422
    assert "pat@client.example is already asked to decide on this request." in _words(
        refused.get_data(as_text=True))
    db.session.refresh(second)
    assert second.status == DelegationStatus.REQUESTED  # staff may still decline it
    assert browser.post(f"/delegations/{second.id}/decline").status_code == 302
    assert len(_request(d).approvers) == 2
