"""Staff record a phone approval on the contact's behalf in Chromium, on a phone (390 px)
and a desktop (1280 px): the form on the deliverable page, the sentence that marks it,
the receipt, and the client's own page saying it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import DecisionOnBehalf, DeliverableState, OnBehalfChannel, utcnow
from tests.e2e.browser_api import expect
from tests.e2e.conftest import Journey, Person, link_in, reading, wait_for_mail

pytestmark = pytest.mark.e2e
SHOTS = Path("/tmp/helpers/shots")


def _keep(j: Journey, page, name: str) -> None:
    path = j.shot(page, name)
    if SHOTS.is_dir():
        shutil.copy(path, SHOTS / f"on-behalf-{path.name}")


@pytest.mark.parametrize("phone", [True, False], ids=["390px", "1280px"])
def test_staff_record_a_phone_approval_on_the_contacts_behalf(
        browser_page: Journey, staff_a: Person, make_deliverable, smtp_sink, phone: bool):
    j = browser_page
    d = make_deliverable(DeliverableState.DELIVERED)
    approver = d.open_request.approvers[0]
    deliverable_id, name, email = d.id, approver.contact.name, approver.contact.email
    db.session.commit()
    invitation = wait_for_mail(smtp_sink, email)[0]
    size = "phone" if phone else "desktop"

    sam = j.actor(phone=phone)
    j.sign_in(sam, staff_a.email)
    sam.goto(f"/deliverables/{deliverable_id}")
    sam.get_by_text(f"Record a decision on behalf of {name}").click()
    form = sam.locator("form", has=sam.get_by_role(
        "button", name=f"Record the decision on behalf of {name}"))
    form.get_by_label("Approve", exact=True).check()
    form.get_by_label("How it was given").select_option("phone")
    form.get_by_label("When it was given (UTC)").fill(utcnow().strftime("%Y-%m-%dT%H:%M"))
    form.get_by_label("Note (required): who said it, to whom, and how").fill(
        f"{name} phoned Sam and approved it as it is.")
    form.get_by_label("Evidence (optional): the email, or a scan").set_input_files(
        {"name": "call-notes.pdf", "mimeType": "application/pdf",
         "buffer": sample_pdf("Call notes")})
    _keep(j, sam, f"01-form-{size}")
    form.get_by_role("button", name=f"Record the decision on behalf of {name}").click()

    sentence = f"Recorded by {staff_a.name} on behalf of {name}, who approved by phone on"
    expect(sam.locator("#deliverable-main")).to_contain_text(sentence)
    expect(sam.get_by_role("link", name="Evidence: call-notes.pdf")).to_be_visible()
    _keep(j, sam, f"02-recorded-{size}")

    receipt = [m for m in wait_for_mail(smtp_sink, email, 2) if "on your behalf" in m["Subject"]]
    assert len(receipt) == 1
    with reading():
        row = db.session.scalars(select(DecisionOnBehalf)).one()
        assert (row.channel, row.evidence_name) == (OnBehalfChannel.PHONE, "call-notes.pdf")

    client = j.actor(phone=phone)
    client.goto(link_in(invitation))
    expect(client.locator("#decision-panel")).to_contain_text(sentence)
    _keep(j, client, f"03-client-page-{size}")
