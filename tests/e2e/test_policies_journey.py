"""Issue 15's "any one of": staff deliver to two approvers on a phone, one approves from
the email link, and the other's page (and email) says their decision is no longer needed."""
from __future__ import annotations

import pytest

from portal.extensions import db
from portal.models import ApproverStatus, Deliverable, DeliverableState, Policy, RequestStatus
from tests.e2e.browser_api import expect
from tests.e2e.conftest import Journey, Person, link_in, reading, text_of, wait_for_mail

pytestmark = pytest.mark.e2e
TITLE = "Homepage v3"  # make_deliverable's
CONTACTS = [("Jane Doe", "jane@acme.example"), ("John Roe", "john@acme.example")]


def test_any_one_of_two_on_a_phone(browser_page: Journey, staff_a: Person, make_client,
                                   make_project, make_deliverable, smtp_sink):
    j = browser_page
    client = make_client("Acme Corp", contacts=2)
    for contact, (name, email) in zip(client.contacts, CONTACTS, strict=True):
        contact.name, contact.email = name, email
    db.session.commit()
    d = make_deliverable(DeliverableState.READY, project=make_project(client))
    with reading():
        deliverable_id = d.id

    # Staff, on a phone: both approvers, "any one of", a request for changes ends it.
    staff = j.actor(phone=True)
    j.sign_in(staff, staff_a.email)
    staff.goto(f"/deliverables/{deliverable_id}")
    for name, _ in CONTACTS:
        staff.get_by_role("group", name="Approvers").locator(".row").filter(
            has_text=name).get_by_role("checkbox").check()
    decide = staff.get_by_role("group", name="How the approvers decide")
    decide.get_by_label("Any one of them: the first approval decides").check()
    expect(decide.get_by_label("the request ends: changes requested")).to_be_checked()
    j.shot(staff, "01-deliver-any-one-phone")
    staff.get_by_role("button", name="Deliver", exact=True).tap()
    expect(staff.get_by_text("Delivered. The approvers have been emailed.")).to_be_visible()
    expect(staff.get_by_text("Any one of 2 approvers; a request for changes ends it")
           ).to_be_visible()
    with reading():
        request = db.session.get(Deliverable, deliverable_id).open_request
        assert request.policy == Policy.ANY_ONE and request.changes_end_request
        assert [a.status for a in request.approvers] == [ApproverStatus.INVITED] * 2

    # Jane approves from her email's link, in two taps.
    jane = j.actor(phone=True)
    jane.goto(link_in(wait_for_mail(smtp_sink, CONTACTS[0][1])[0]))
    expect(jane.locator("#decision-panel .status")).to_have_text(
        "Waiting for your decision. Any one of you can approve")
    jane.get_by_role("button", name="Approve", exact=True).tap()
    jane.get_by_role("button", name=f"Approve version 1 of {TITLE}", exact=True).tap()
    expect(jane.locator("#decision-panel .status")).to_have_text("Approved by Jane Doe")
    j.shot(jane, "02-jane-approved-phone")

    # John's link still opens; his page says it is decided and offers no decision.
    john = j.actor(phone=True)
    john.goto(link_in(wait_for_mail(smtp_sink, CONTACTS[1][1])[0]))
    expect(john.locator("#decision-panel .status")).to_have_text(
        "Approved by Jane Doe: your decision is no longer needed")
    expect(john.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
    expect(john.get_by_role("button", name="Request changes", exact=True)).to_have_count(0)
    expect(john.locator(".approver-list")).to_contain_text("No decision needed")
    j.shot(john, "03-john-not-needed-phone")
    told = [m for m in wait_for_mail(smtp_sink, CONTACTS[1][1], count=2)
            if m["Subject"].startswith("No decision needed")]
    assert told and "Approved by Jane Doe." in text_of(told[0])
    with reading():
        request = db.session.get(Deliverable, deliverable_id).requests[-1]
        assert request.status == RequestStatus.APPROVED
        assert [a.status for a in request.approvers] == [
            ApproverStatus.APPROVED, ApproverStatus.WITHDRAWN]
