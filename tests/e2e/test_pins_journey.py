"""Pinning a comment on a page: a tap on a phone, a click on a desktop, seen by staff."""
from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from portal import workflow
from portal.extensions import db
from portal.models import Comment, DeliverableState, Policy
from portal.workflow.links import issue_token
from tests.conftest import future
from tests.e2e.browser_api import Page, expect
from tests.e2e.conftest import Journey, Person, reading
from tests.test_renders import three_page_pdf

pytestmark = pytest.mark.e2e


def _pin_at(page: Page, number: int, x: float, y: float, *, tap: bool) -> None:
    layer = page.locator(f"#page-{number} svg.layer")
    layer.scroll_into_view_if_needed()
    expect(page.locator(f"#page-{number} img")).to_be_visible()
    box = layer.bounding_box()
    assert box is not None
    spot = {"x": box["width"] * x, "y": box["height"] * y}
    (layer.tap if tap else layer.click)(position=spot)
    expect(page.locator(".pin-chip")).to_contain_text(f"Pinned to page {number}")


def test_clients_pin_comments_on_page_2_and_staff_see_them(
        browser_page: Journey, staff_a: Person, staff, colleague, make_deliverable):
    j = browser_page
    d = make_deliverable(DeliverableState.DRAFT, with_version=False, approvers=2)
    workflow.upload_version(staff, d, io.BytesIO(three_page_pdf()), "brochure.pdf", "First cut")
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    request = workflow.deliver(staff, d, d.project.client.contacts[:2], Policy.PARALLEL,
                               future(7))
    db.session.commit()
    with reading():
        deliverable_id = d.id
        links = [f"/r/{issue_token(a)}" for a in request.approvers]

    phone = j.actor(phone=True)
    phone.goto(links[0])
    _pin_at(phone, 2, 0.3, 0.08, tap=True)
    phone.get_by_label("Comment", exact=True).fill("Make this headline bigger")
    j.shot(phone, "01-pin-placed-phone")
    phone.get_by_role("button", name="Post comment").click()
    expect(phone.locator("#comments")).to_contain_text("p. 2 · #1")
    expect(phone.locator("#page-2 .marker")).to_have_count(1)
    j.shot(phone, "02-pinned-phone")

    desk = j.actor()
    desk.goto(links[1])
    expect(desk.locator("#page-2 .marker")).to_have_count(1)
    _pin_at(desk, 2, 0.6, 0.5, tap=False)
    desk.get_by_label("Comment", exact=True).fill("And this paragraph")
    desk.get_by_role("button", name="Post comment").click()
    expect(desk.locator("#comments")).to_contain_text("p. 2 · #2")
    desk.get_by_role("button", name="200 %").click()
    expect(desk.locator("#viewer")).to_have_attribute("data-zoom", "200")
    desk.get_by_role("button", name="Fit width").click()
    j.shot(desk, "03-pinned-desktop")

    with reading():
        pins = [(c.page, round(c.x, 1), round(c.y, 1)) for c in
                db.session.scalars(select(Comment).order_by(Comment.id))]
    assert pins == [(2, 0.3, 0.1), (2, 0.6, 0.5)]

    sam = j.actor()
    j.sign_in(sam, staff_a.email)
    sam.goto(f"/deliverables/{deliverable_id}")
    expect(sam.locator("#page-2 .marker")).to_have_count(2)
    sam.get_by_role("link", name="p. 2 · #1").click()
    expect(sam.locator('#page-2 .marker.chosen')).to_have_count(1)
    expect(sam).to_have_url(re.compile(r"#page-2$"))
    j.shot(sam, "04-staff-sees-pins-desktop")
