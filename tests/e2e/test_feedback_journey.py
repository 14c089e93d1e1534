"""Feedback across versions in a browser: staff mark a client's point from version 1
addressed in version 2 (and another won't change), the client sees both on version 2's page
on a phone and reopens one, and staff see it open again. Screenshots in test-artifacts/e2e/."""
from __future__ import annotations

import io

import pytest

from portal import workflow
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import (
    Comment,
    DeliverableState,
    Outcome,
    PointStatus,
    Policy,
)
from portal.workflow.comments import post_comment
from portal.workflow.links import issue_token
from portal.workflow.pins import Pin
from tests.conftest import future, on_screen
from tests.e2e.browser_api import expect
from tests.e2e.conftest import Journey, Person, reading

pytestmark = pytest.mark.e2e

HEADLINE = "The headline is too long on phones."
FOOTER = "Please drop the legal line in the footer."
NOTE = "Shortened to five words."
REASON = "Legal asked us to keep it word for word."


def _section_shot(j: Journey, locator, name: str) -> None:
    """The section alone beside the full page, to read at a glance."""
    path = j.shot(locator.page, name)
    locator.screenshot(path=str(path.with_name(path.stem + "-section.png")), caret="initial")


def test_points_from_version_1_are_followed_on_version_2(
        browser_page: Journey, staff_a: Person, staff, colleague, make_deliverable):
    j = browser_page
    d = make_deliverable(DeliverableState.DELIVERED)
    approver = d.open_request.approvers[0]
    headline = post_comment(approver.contact, d.open_request, HEADLINE,
                            seen_sha256=on_screen(approver), pin=Pin(page=1, x=.4, y=.2))
    footer = post_comment(approver.contact, d.open_request, FOOTER,
                          seen_sha256=on_screen(approver))
    workflow.record_decision(approver, Outcome.REJECTED, "A few fixes",
                             seen_sha256=on_screen(approver))
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf("Homepage v2")), "v2.pdf",
                            "Shorter headline")
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    v2 = workflow.deliver(staff, d, d.project.client.contacts[:1], Policy.PARALLEL, future())
    db.session.commit()
    deliverable_id, headline_id, footer_id = d.id, headline.id, footer.id
    link = f"/r/{issue_token(v2.approvers[0])}"
    db.session.commit()

    # Staff, on a desktop: both points open; one addressed in version 2, one won't change.
    sam = j.actor()
    j.sign_in(sam, staff_a.email)
    sam.goto(f"/deliverables/{deliverable_id}")
    points = sam.locator("#points")
    expect(points.get_by_role("heading")).to_contain_text("2 open")
    item = points.locator(f"#point-{headline_id}")
    expect(item).to_contain_text("Version 1 · p. 1")
    expect(item.get_by_label("Addressed in").locator("option:checked")).to_have_text("version 2")
    _section_shot(j, points, "01-staff-points-open-desktop")
    item.get_by_label("Note for the client").fill(NOTE)
    item.get_by_role("button", name="Mark addressed").click()
    expect(sam.locator(f"#point-{headline_id}")).to_contain_text(
        f"addressed in version 2 Note: {NOTE}")
    other = sam.locator(f"#point-{footer_id}")
    other.get_by_label("Won't change, because").fill(REASON)
    other.get_by_role("button", name="Won't change").click()
    expect(sam.locator("#points").get_by_role("heading")).to_contain_text("0 open")
    _section_shot(j, sam.locator("#points"), "02-staff-points-resolved-desktop")
    staff_phone = j.actor(phone=True)
    j.sign_in(staff_phone, staff_a.email)
    staff_phone.goto(f"/deliverables/{deliverable_id}#points")
    expect(staff_phone.locator("#points .point-item")).to_have_count(2)
    _section_shot(j, staff_phone.locator("#points"), "03-staff-points-phone")

    # The client, on a phone: version 2's page lists both with how each stands.
    jane = j.actor(phone=True)
    jane.goto(link)
    section = jane.locator("#earlier-points")
    expect(section.get_by_role("heading")).to_contain_text("Your points from earlier versions")
    expect(section.locator(f"#point-{headline_id}")).to_contain_text(
        f"addressed in version 2 {NOTE}")
    expect(section.locator(f"#point-{footer_id}")).to_contain_text(
        f"won't change Reason: {REASON}")
    section.scroll_into_view_if_needed()
    _section_shot(j, section, "04-client-earlier-points-phone")
    section.locator(f"#point-{footer_id}").get_by_role("button", name="Reopen").click()
    expect(jane.locator(f"#earlier-points #point-{footer_id}")).to_contain_text("open")
    expect(jane.locator("#earlier-points").get_by_role("heading")).to_contain_text("1 open")
    _section_shot(j, jane.locator("#earlier-points"), "05-client-reopened-phone")

    desk = j.actor()
    desk.goto(link)
    expect(desk.locator("#earlier-points .point-item")).to_have_count(2)
    _section_shot(j, desk.locator("#earlier-points"), "06-client-earlier-points-desktop")

    sam.reload()
    expect(sam.locator("#points").get_by_role("heading")).to_contain_text("1 open")
    expect(sam.locator(f"#point-{footer_id}").get_by_role("button",
                                                           name="Mark addressed")).to_be_visible()
    _section_shot(j, sam.locator("#points"), "07-staff-point-reopened-desktop")
    with reading():
        statuses = {c.id: c.resolution_status for c in db.session.query(Comment)}
        assert statuses[headline_id] == PointStatus.ADDRESSED
        assert statuses[footer_id] == PointStatus.OPEN
    assert not j.page_errors, j.page_errors
