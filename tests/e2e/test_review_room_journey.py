"""Issue 12's bar, on a phone: open the link, read a three-page PDF page by page, tap the
headline on page 2 to comment there, see what changed since the last version, and approve
with two conditions that staff later tick off in version 3."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from portal import workflow
from portal.extensions import db
from portal.models import Comment, Condition, ConditionStatus, Deliverable, Policy, User
from portal.workflow.links import issue_token
from tests.conftest import future
from tests.e2e.browser_api import expect
from tests.e2e.conftest import Journey, Person, reading
from tests.test_renders import three_page_pdf

pytestmark = pytest.mark.e2e
LOGO, TYPO = "Use the 2025 logo on the cover.", "Fix the typo in the footer."


def _send(staff_id: int, colleague_id: int, deliverable_id: int, pdf: bytes, name: str):
    staff, colleague = db.session.get(User, staff_id), db.session.get(User, colleague_id)
    d = db.session.get(Deliverable, deliverable_id)
    workflow.upload_version(staff, d, io.BytesIO(pdf), name, "New headline on page 2")
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    return workflow.deliver(staff, d, d.project.client.contacts[:1], Policy.PARALLEL, future(7))


def test_a_phone_reads_pins_compares_and_approves_with_conditions_ticked_off_later(
        browser_page: Journey, staff_a: Person, staff, colleague, make_deliverable):
    j = browser_page
    d = make_deliverable(with_version=False)
    ids = (staff.id, colleague.id, d.id)
    first = _send(*ids, three_page_pdf(), "brochure-v1.pdf")
    workflow.cancel_request(staff, first)  # version 1 went out; version 2 replaces it
    request = _send(*ids, three_page_pdf(second="Rates"), "brochure-v2.pdf")
    db.session.commit()
    with reading():
        link = f"/r/{issue_token(request.approvers[0])}"
        deliverable_id = d.id

    phone = j.actor(phone=True)
    phone.goto(link)
    expect(phone.get_by_role("heading", level=1)).to_contain_text("version 2")
    for number in (1, 2, 3):  # page by page, from the strip of thumbnails
        phone.get_by_role("link", name=f"Page {number}", exact=True).click()
        expect(phone.locator(f"#page-{number} img")).to_be_in_viewport()
    layer = phone.locator("#page-2 svg.layer")
    layer.scroll_into_view_if_needed()
    box = layer.bounding_box()
    assert box is not None
    layer.tap(position={"x": box["width"] * 0.25, "y": box["height"] * 0.08})  # the headline
    phone.get_by_label("Comment", exact=True).fill("Rates is right, but make it bigger")
    phone.get_by_role("button", name="Post comment").click()
    expect(phone.locator("#comments")).to_contain_text("p. 2 · #1")
    j.shot(phone, "01-pinned-the-headline-phone")

    phone.get_by_role("link", name="See what changed since version 1").click()
    expect(phone.locator("body")).to_contain_text("changes on page 2")  # polled until done
    j.shot(phone, "02-what-changed-phone")
    phone.go_back()

    phone.get_by_role("button", name="Approve with conditions").click()
    phone.get_by_label("Condition 1", exact=True).fill(LOGO)
    phone.get_by_label("Condition 2").fill(TYPO)
    phone.get_by_role("button", name="Approve version 2 of", exact=False).click()
    expect(phone.locator("#decision-panel .conditions li")).to_have_count(2)
    j.shot(phone, "03-approved-with-two-conditions-phone")

    with reading():  # version 3: the fixes
        workflow.upload_version(db.session.get(User, staff_a.id),
                                db.session.get(Deliverable, deliverable_id),
                                io.BytesIO(three_page_pdf(second="Rates!")), "brochure-v3.pdf",
                                "Logo and footer fixed")
    sam = j.actor()
    j.sign_in(sam, staff_a.email)
    sam.goto(f"/deliverables/{deliverable_id}")
    checklist = sam.locator("#conditions")
    for text in (LOGO, TYPO):
        item = checklist.locator(".condition-item").filter(has_text=text)
        expect(item.get_by_label("Met in").locator("option:checked")).to_have_text("version 3")
        item.get_by_role("button", name="Mark met").click()
        expect(checklist.locator(".condition-item").filter(has_text=text)).to_contain_text(
            "met in version 3")
    j.shot(sam, "04-staff-ticked-off-in-version-3-desktop")

    with reading():
        assert [c.status for c in db.session.scalars(select(Condition).order_by(Condition.id))] \
            == [ConditionStatus.MET, ConditionStatus.MET]
        [pinned] = db.session.scalars(select(Comment)).all()
        assert pinned.page == 2 and pinned.y is not None and pinned.y < 0.2
