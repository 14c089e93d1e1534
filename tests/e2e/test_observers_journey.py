"""Observers (CC) on a phone: staff deliver to one approver and keep a second contact
informed; the observer opens their email's link, sees the document with no way to
decide, comments (staff allowed it), and hears the outcome once the approver approves."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from portal.extensions import db
from portal.models import Comment, Deliverable, DeliverableState, RequestStatus
from tests.e2e.browser_api import expect
from tests.e2e.conftest import Journey, Person, link_in, reading, text_of, wait_for_mail

pytestmark = pytest.mark.e2e
TITLE = "Homepage v3"  # make_deliverable's
JANE = ("Jane Doe", "jane@acme.example")
OLGA = ("Olga Owens", "olga@acme.example")
OBSERVER_LINK = re.compile(r"http://127\.0\.0\.1:\d+/r/o/[A-Za-z0-9_.\-]+")
SHOTS = Path("/tmp/helpers/shots")


def _shot(j: Journey, page, name: str) -> None:
    """The journey's screenshot, and a copy where the session collects them."""
    path = j.shot(page, name)
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SHOTS / f"observers-{name}.png")


def test_an_observer_follows_a_review_on_a_phone(browser_page: Journey, staff_a: Person,
                                                 make_client, make_project, make_deliverable,
                                                 smtp_sink):
    j = browser_page
    client = make_client("Acme Corp", contacts=2)
    for contact, (name, email) in zip(client.contacts, (JANE, OLGA), strict=True):
        contact.name, contact.email = name, email
    db.session.commit()
    d = make_deliverable(DeliverableState.READY, project=make_project(client))
    with reading():
        deliverable_id = d.id

    # Staff, on a phone: Jane approves, Olga is kept informed and may comment.
    staff = j.actor(phone=True)
    j.sign_in(staff, staff_a.email)
    staff.goto(f"/deliverables/{deliverable_id}")
    staff.get_by_role("group", name="Approvers").locator(".row").filter(
        has_text=JANE[0]).get_by_role("checkbox").check()
    informed = staff.get_by_role("group", name="Also keep informed (can view only)")
    informed.get_by_label(OLGA[0]).check()
    informed.get_by_label("They may comment beside the document").check()
    _shot(j, staff, "01-deliver-with-observer-phone")
    staff.get_by_role("button", name="Deliver", exact=True).tap()
    expect(staff.get_by_text("Delivered. The approvers have been emailed.")).to_be_visible()
    expect(staff.locator(".observer-list")).to_contain_text(OLGA[1])
    _shot(j, staff, "02-staff-sees-observer-phone")

    # Olga opens her link: the document, a banner, no decision.
    olga = j.actor(phone=True)
    [invitation] = wait_for_mail(smtp_sink, OLGA[1])
    link = OBSERVER_LINK.search(text_of(invitation))
    assert link, text_of(invitation)
    olga.goto(link.group(0))
    expect(olga.locator(".observer-banner")).to_have_text(
        "You can view this and follow the outcome, and comment beside it; the decision is "
        f"for {JANE[0]}.")
    expect(olga.locator("#decision-panel .status")).to_have_text(f"Waiting for {JANE[0]} to decide")
    expect(olga.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
    expect(olga.get_by_role("button", name="Request changes", exact=True)).to_have_count(0)
    olga.get_by_label("Comment", exact=True).fill("Finance is happy with the budget line.")
    olga.get_by_role("button", name="Post comment").tap()
    expect(olga.locator("#thread")).to_contain_text("Finance is happy with the budget line.")
    _shot(j, olga, "03-observer-page-phone")
    with reading():
        [comment] = db.session.query(Comment).all()
        assert comment.author_contact.email == OLGA[1]

    # Jane approves; Olga is told, and her page shows the outcome.
    jane = j.actor(phone=True)
    jane.goto(link_in(wait_for_mail(smtp_sink, JANE[1])[0]))
    jane.get_by_role("button", name="Approve", exact=True).tap()
    jane.get_by_role("button", name=f"Approve version 1 of {TITLE}", exact=True).tap()
    expect(jane.locator("#decision-panel .status")).to_have_text("Approved by everyone")
    told = [m for m in wait_for_mail(smtp_sink, OLGA[1], count=2)
            if "is approved" in m["Subject"]]
    assert len(told) == 1 and f"Decided by {JANE[0]}." in text_of(told[0])
    olga.reload()
    expect(olga.locator("#decision-panel .status")).to_have_text("Approved by everyone")
    expect(olga.locator("#comment-form")).to_have_count(0)
    _shot(j, olga, "04-observer-outcome-phone")
    with reading():
        request = db.session.get(Deliverable, deliverable_id).requests[-1]
        assert request.status == RequestStatus.APPROVED
        assert [a.contact.email for a in request.approvers] == [JANE[1]]
