"""Browser journey: two clients approve with conditions (one on a phone with htmx, one on a
desktop without JavaScript), staff tick them off in the next version, and the client sees
each condition's resolution. Screenshots in test-artifacts/e2e/."""
from __future__ import annotations

import io
import re

import pytest

from portal import workflow
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import (
    Condition,
    ConditionStatus,
    Deliverable,
    DeliverableState,
    ReviewRequest,
    User,
)
from portal.workflow.links import issue_token
from tests.e2e.browser_api import expect
from tests.e2e.conftest import DESKTOP, TIMEOUT_MS, Journey, Person, reading

pytestmark = pytest.mark.e2e
WITH_THESE = re.compile(r"^Approve version \d+ of .* with these conditions$")

LOGO = "Use the 2025 logo on the cover."
TYPO = "Fix the typo in the footer on page 2."
PANTONE = "Print the blue as Pantone 2945."
REASON = "The printer cannot match Pantone on this paper; CMYK it is."


def _no_script_actor(j: Journey):
    """A desktop browser with JavaScript switched off: plain forms only."""
    context = j.browser.new_context(base_url=j.base_url, viewport=DESKTOP,
                                    java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    j.contexts.append(context)
    return context.new_page()


def test_conditions_are_ticked_off_in_the_next_version(
        browser_page: Journey, staff_a: Person, make_deliverable):
    j = browser_page
    d = make_deliverable(DeliverableState.DELIVERED, approvers=2)
    with reading():
        request = d.open_request
        deliverable_id, request_id = d.id, request.id
        jane_link, john_link = (f"/r/{issue_token(a)}" for a in request.approvers)

    # Jane, on a phone with htmx: three boxes, one more on request, two filled in.
    jane = j.actor(phone=True)
    jane.goto(jane_link)
    jane.get_by_role("button", name="Approve with conditions").click()
    expect(jane.locator('input[name="condition"]')).to_have_count(3)
    jane.get_by_label("Condition 1", exact=True).fill(LOGO)
    jane.get_by_label("Condition 2").fill(TYPO)
    jane.get_by_role("button", name="Add another condition").click()
    expect(jane.locator('input[name="condition"]')).to_have_count(4)
    expect(jane.get_by_label("Condition 1", exact=True)).to_have_value(LOGO)
    expect(jane.get_by_label("Condition 2")).to_have_value(TYPO)
    jane.get_by_label("Note").fill("Lovely otherwise.")
    j.shot(jane, "01-client-conditions-form-phone")
    jane.get_by_role("button", name=WITH_THESE).click()
    items = jane.locator("#decision-panel .conditions li")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text(f"{LOGO} open")
    expect(items.nth(1)).to_contain_text(f"{TYPO} open")
    j.shot(jane, "02-client-decided-phone")

    # John, on a desktop without JavaScript: the same form, by plain GETs and POSTs.
    john = _no_script_actor(j)
    john.goto(john_link)
    john.get_by_role("button", name="Approve with conditions").click()
    expect(john).to_have_url(re.compile(r"choice=approve_with_conditions"))
    john.get_by_label("Condition 1", exact=True).fill(PANTONE)
    john.get_by_role("button", name="Add another condition").click()
    expect(john.locator('input[name="condition"]')).to_have_count(4)
    expect(john.get_by_label("Condition 1", exact=True)).to_have_value(PANTONE)
    j.shot(john, "03-client-conditions-form-desktop-no-js")
    john.get_by_role("button", name=WITH_THESE).click()
    expect(john.locator("#decision-panel .conditions li")).to_have_text(
        [f"{PANTONE} open"], use_inner_text=True)

    with reading():
        request = db.session.get(ReviewRequest, request_id)
        assert [[c.text for c in a.decision.conditions] for a in request.approvers] == [
            [LOGO, TYPO], [PANTONE]]
        assert request.version.deliverable.state == DeliverableState.APPROVED_WITH_CONDITIONS

    # Staff see the open conditions on the dashboard and the deliverable page.
    sam = j.actor()
    j.sign_in(sam, staff_a.email)
    section = sam.locator("#section-open_conditions")
    expect(section).to_contain_text("3 open conditions")
    j.shot(sam, "04-dashboard-open-conditions-desktop")

    with reading():  # version 2: the fixes
        workflow.upload_version(db.session.get(User, staff_a.id),
                                db.session.get(Deliverable, deliverable_id),
                                io.BytesIO(sample_pdf("Homepage v2")), "homepage-v2.pdf",
                                "New logo and footer")
    sam.goto(f"/deliverables/{deliverable_id}")
    checklist = sam.locator("#conditions")
    expect(checklist.get_by_role("heading")).to_contain_text("3 open")
    j.shot(sam, "05-staff-conditions-open-desktop")
    staff_phone = j.actor(phone=True)
    j.sign_in(staff_phone, staff_a.email)
    staff_phone.goto(f"/deliverables/{deliverable_id}#conditions")
    expect(staff_phone.locator("#conditions .condition-item")).to_have_count(3)
    j.shot(staff_phone, "05-staff-conditions-open-phone")

    logo = checklist.locator(".condition-item").filter(has_text=LOGO)
    expect(logo.get_by_label("Met in").locator("option:checked")).to_have_text("version 2")
    logo.get_by_label("Note").fill("New logo on cover and back")
    logo.get_by_role("button", name="Mark met").click()
    expect(checklist.locator(".condition-item").filter(has_text=LOGO)).to_contain_text(
        "met in version 2")
    typo = checklist.locator(".condition-item").filter(has_text=TYPO)
    typo.get_by_role("button", name="Mark met").click()
    expect(checklist.get_by_role("heading")).to_contain_text("1 open")
    pantone = checklist.locator(".condition-item").filter(has_text=PANTONE)
    pantone.get_by_label("Won't do, because").fill(REASON)
    pantone.get_by_role("button", name="Won't do").click()
    expect(checklist.get_by_role("heading")).to_contain_text("0 open")
    resolved = checklist.locator(".condition-item").filter(has_text=PANTONE)
    expect(resolved.locator(".badge")).to_have_text("won't do")
    expect(resolved).to_contain_text(f"Reason (the client sees it): {REASON}")
    j.shot(sam, "06-staff-conditions-resolved-desktop")

    staff_phone.reload()
    j.shot(staff_phone, "07-staff-conditions-resolved-phone")

    with reading():
        statuses = [c.status for c in db.session.query(Condition).order_by(Condition.id)]
        assert statuses == [ConditionStatus.MET, ConditionStatus.MET, ConditionStatus.WONT_DO]

    # Each client sees how their conditions stand; John reads the reason.
    jane.reload()
    items = jane.locator("#decision-panel .conditions li")
    expect(items.nth(0)).to_contain_text(f"{LOGO} met in version 2")
    expect(items.nth(1)).to_contain_text(f"{TYPO} met in version 2")
    j.shot(jane, "08-client-conditions-met-phone")
    john.reload()
    expect(john.locator("#decision-panel .conditions li")).to_contain_text(
        [f"{PANTONE} won't do Reason: {REASON}"], use_inner_text=True)
