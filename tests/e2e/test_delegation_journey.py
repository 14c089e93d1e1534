"""Delegation, done when "a French client forwards the request to a colleague who
approves": on a phone (390 px) a French-speaking approver says "Je ne suis pas la bonne
personne" and names a colleague, staff confirm it on the deliverable page, and the
colleague opens the link from their (French) email and approves."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask_babel import gettext

from portal.extensions import db
from portal.i18n import in_language
from portal.models import (
    ApproverStatus,
    Delegation,
    DelegationStatus,
    Deliverable,
    DeliverableState,
    RequestStatus,
)
from tests.e2e.browser_api import expect
from tests.e2e.conftest import Journey, Person, link_in, reading, text_of, wait_for_mail

pytestmark = pytest.mark.e2e
TITLE = "Homepage v3"  # make_deliverable's
JANE = ("Jeanne Dupont", "jeanne@acme.example")
PAT = ("Patrice Martin", "patrice@acme.example")
SHOTS = Path("/tmp/helpers/shots")


def fr(message: str, **values: object) -> str:
    """What the French catalogue says for `message`."""
    with in_language("fr"):
        return gettext(message, **values)


def keep(j: Journey, page, name: str) -> None:
    """A screenshot in test-artifacts/e2e and a copy where the session collects them."""
    path = j.shot(page, name)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / f"delegation-{path.name}")


def test_a_french_client_hands_over_to_a_colleague_who_approves(
        browser_page: Journey, staff_a: Person, make_client, make_project, make_deliverable,
        smtp_sink):
    j = browser_page
    client = make_client("Acme SARL", contacts=1)
    contact = client.contacts[0]
    contact.name, contact.email, contact.language = *JANE, "fr"
    db.session.commit()
    d = make_deliverable(DeliverableState.DELIVERED, project=make_project(client))
    with reading():
        deliverable_id = d.id

    # Jeanne, on her phone, opens her link: the page is in French and offers the hand-over.
    jeanne = j.actor(phone=True)
    jeanne.goto(link_in(wait_for_mail(smtp_sink, JANE[1])[0]))
    offer = jeanne.get_by_role("link", name=fr("I'm not the right person"))
    expect(offer).to_be_visible()
    offer.tap()
    expect(jeanne.get_by_role("heading", name=fr("Not the right person to decide?"))
           ).to_be_visible()
    jeanne.get_by_label(fr("Your colleague's name")).fill(PAT[0])
    jeanne.get_by_label(fr("Your colleague's email address")).fill(PAT[1])
    jeanne.get_by_label(fr("A note for them")).fill("Patrice valide la charte graphique.")
    keep(j, jeanne, "01-jeanne-form-fr-phone")
    jeanne.get_by_role("button", name=fr("Hand over to this colleague")).tap()
    expect(jeanne.get_by_text(fr("Thank you. The team will confirm the hand-over to "
                                 "%(name)s; until then you can still decide yourself.",
                                 name=PAT[0]))).to_be_visible()
    expect(jeanne.locator("#handover")).to_contain_text(PAT[0])
    keep(j, jeanne, "02-jeanne-asked-fr-phone")

    # Staff are told, and confirm it from the deliverable page.
    asking = [m for m in wait_for_mail(smtp_sink, staff_a.email)
              if "Please confirm" in m["Subject"]]
    assert asking and "Patrice valide la charte graphique." in text_of(asking[0])
    staff = j.actor(phone=True)
    j.sign_in(staff, staff_a.email)
    staff.goto(f"/deliverables/{deliverable_id}#handovers")
    handovers = staff.locator("#handovers")
    expect(handovers).to_contain_text(f"{JANE[0]} asks to hand request")
    keep(j, staff, "03-staff-confirm-phone")
    handovers.get_by_role("button", name=f"Confirm: {PAT[0]} decides").tap()
    expect(staff.get_by_text(f"{PAT[0]} now decides in place of {JANE[0]}")).to_be_visible()
    with reading():
        delegation = db.session.query(Delegation).one()
        assert delegation.status == DelegationStatus.CONFIRMED
        assert delegation.from_approver.status == ApproverStatus.DELEGATED

    # Jeanne's page now says to whom she handed it over (her link no longer decides).
    jeanne.reload()
    expect(jeanne.get_by_text(fr("You handed this review over to %(name)s, who now decides "
                                 "in your place. Nothing more is asked of you.",
                                 name=PAT[0]))).to_be_visible()
    keep(j, jeanne, "04-jeanne-handed-over-fr-phone")

    # Patrice gets a French invitation with the note, opens it on a phone and approves.
    [invitation] = wait_for_mail(smtp_sink, PAT[1])
    assert "Patrice valide la charte graphique." in text_of(invitation)
    assert fr("Open the review page") in invitation.get_body(
        preferencelist=("html",)).get_content()
    patrice = j.actor(phone=True)
    patrice.goto(link_in(invitation))
    patrice.get_by_role("button", name=fr("Approve"), exact=True).tap()
    patrice.get_by_role("button", name=fr("Approve version %(n)s of %(title)s", n=1,
                                          title=TITLE), exact=True).tap()
    expect(patrice.locator("#decision-panel .status")).to_be_visible()
    keep(j, patrice, "05-patrice-approved-fr-phone")
    with reading():
        request = db.session.get(Deliverable, deliverable_id).requests[-1]
        assert request.status == RequestStatus.APPROVED
        assert [a.contact.name for a in request.approvers] == [PAT[0]]
        assert request.approvers[0].decision is not None
