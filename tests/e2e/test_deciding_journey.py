"""Issue 13's bar for deciding: from the email, a client approves on a phone in two taps
(the second one's label says the act), focus and the screen reader follow the decision
panel, and "Request changes" asks only what should change; staff then classify it."""
from __future__ import annotations

import re
import time
from typing import Any

import pytest

from portal.extensions import db
from portal.models import Decision, Deliverable, Outcome, RejectionScope, RequestStatus
from tests.e2e.browser_api import Page, expect
from tests.e2e.conftest import Journey, Person, link_in, reading, wait_for_mail

pytestmark = pytest.mark.e2e
TITLE = "Homepage v3"  # make_deliverable's
DESKTOP = {"width": 1280, "height": 800}
# Every trusted click or tap the person makes, kept across page loads (sessionStorage), so
# the count holds with or without JavaScript of ours. Playwright adds it, not the page:
# the CSP stays as strict as ever.
COUNT_TAPS = """document.addEventListener("click", (e) => {
  if (e.isTrusted) sessionStorage.taps = String(Number(sessionStorage.taps || 0) + 1);
}, true);"""


def _delivered(make_deliverable, smtp_sink) -> tuple[int, str, str]:
    """A delivered deliverable, the approver's address and the link their email carries."""
    from portal.models import DeliverableState

    d = make_deliverable(DeliverableState.DELIVERED)
    with reading():
        deliverable_id, email = d.id, d.open_request.approvers[0].contact.email
    return deliverable_id, email, link_in(wait_for_mail(smtp_sink, email)[0])


def _taps(page: Page) -> int:
    return int(page.evaluate("Number(sessionStorage.taps || 0)"))


def _focused(page: Page) -> Any:
    """The id of document.activeElement, once the swap has settled (htmx settles ~20 ms
    after the swap, and app.js moves focus then)."""
    expect(page.locator("#decision-panel")).to_be_focused()
    return page.evaluate("document.activeElement && document.activeElement.id")


def _announced(page: Page) -> str:
    return page.locator("#live-announcer").text_content() or ""


def _certificate_issued(page: Page) -> None:
    """The approval's certificate is sealed by the background worker; wait for it, so the
    test's own read does not queue behind that write (SQLite has one writer)."""
    deadline = time.monotonic() + 30
    link = page.get_by_role("link", name="Download the approval certificate")
    while not link.count():
        assert time.monotonic() < deadline, "no certificate within 30 s"
        time.sleep(0.5)
        page.reload()


def _no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), \
        "the page scrolls sideways"


@pytest.mark.parametrize("phone", [True, False], ids=["phone-390x844", "desktop-1280x800"])
def test_a_client_approves_from_the_email_in_two_taps(browser_page: Journey, make_deliverable,
                                                      smtp_sink, phone: bool):
    j = browser_page
    deliverable_id, _, link = _delivered(make_deliverable, smtp_sink)
    page = j.actor(phone=phone)
    if not phone:
        page.set_viewport_size(DESKTOP)
    page.add_init_script(COUNT_TAPS)
    size = "phone" if phone else "desktop"

    page.goto(link)  # the email's link: a redirect to the review page
    expect(page.get_by_role("heading", level=1)).to_contain_text(TITLE)
    expect(page.locator("#live-announcer")).to_have_count(1)  # there before anything changes
    approve = page.get_by_role("button", name="Approve", exact=True)
    expect(page.get_by_role("button", name="Request changes", exact=True)).to_be_visible()
    j.shot(page, f"00-from-the-email-{size}")
    (approve.tap if phone else approve.click)()

    confirm = page.get_by_role("button", name=f"Approve version 1 of {TITLE}", exact=True)
    expect(confirm).to_be_visible()
    assert _focused(page) == "decision-panel"  # focus follows the swapped panel
    expect(page.locator("#live-announcer")).to_have_text(
        f"Press Approve version 1 of {TITLE} to record your approval.")
    expect(page.locator("#decision-panel input[type=checkbox]")).to_have_count(0)
    _no_sideways_scroll(page)
    j.shot(page, f"01-one-tap-to-go-{size}")
    (confirm.tap if phone else confirm.click)()

    expect(page.locator("#decision-panel .status")).to_have_text("Approved by everyone")
    expect(page.locator("#decision-panel")).to_contain_text("— approved")
    assert _focused(page) == "decision-panel"
    expect(page.locator("#live-announcer")).to_have_text("Approved by everyone.")
    assert _taps(page) == 2, f"{_taps(page)} taps from the email to a recorded approval"
    _no_sideways_scroll(page)
    j.shot(page, f"02-approved-in-two-taps-{size}")
    _certificate_issued(page)

    with reading():
        d = db.session.get(Deliverable, deliverable_id)
        [decision] = [a.decision for r in d.requests for a in r.approvers if a.decision]
        assert decision.outcome == Outcome.APPROVED
        assert decision.version_sha256 == d.current_version.sha256
        assert d.requests[-1].status == RequestStatus.APPROVED


def test_without_javascript_it_is_still_two_taps(browser_page: Journey, make_deliverable,
                                                smtp_sink):
    j = browser_page
    deliverable_id, _, link = _delivered(make_deliverable, smtp_sink)
    context = j.browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                    has_touch=True, java_script_enabled=False)
    j.contexts.append(context)
    page = context.new_page()
    page.goto(link)
    page.get_by_role("button", name="Approve", exact=True).tap()  # a GET: ?choice=approve
    expect(page).to_have_url(re.compile(r"\?choice=approve$"))
    page.get_by_role("button", name=f"Approve version 1 of {TITLE}", exact=True).tap()
    expect(page.locator("#decision-panel .status")).to_have_text("Approved by everyone")
    j.shot(page, "01-approved-without-javascript-phone")
    _certificate_issued(page)
    with reading():
        d = db.session.get(Deliverable, deliverable_id)
        assert d.requests[-1].status == RequestStatus.APPROVED


def test_request_changes_then_staff_classify_it(browser_page: Journey, make_deliverable,
                                               smtp_sink, staff_a: Person):
    j = browser_page
    deliverable_id, email, link = _delivered(make_deliverable, smtp_sink)
    reason = "Make the logo bigger and use the new photo."

    phone = j.actor(phone=True)
    phone.goto(link)
    choice = phone.get_by_role("button", name="Request changes", exact=True)
    assert "danger" not in (choice.get_attribute("class") or "")
    choice.tap()
    what = phone.get_by_label("What should change?")
    expect(what).to_be_visible()
    assert _focused(phone) == "decision-panel"
    expect(phone.locator("#live-announcer")).to_have_text(
        f"Write what should change, then press Request changes to version 1 of {TITLE}.")
    expect(phone.get_by_text("within the original scope")).to_have_count(0)
    send = phone.get_by_role("button", name=f"Request changes to version 1 of {TITLE}")
    send.tap()  # empty: the browser's own check keeps it, nothing sent
    expect(what).to_be_focused()
    what.fill(reason)
    j.shot(phone, "01-what-should-change-phone")
    send.tap()
    expect(phone.locator("#decision-panel .status")).to_have_text("Changes requested")
    expect(phone.locator("#decision-panel")).to_contain_text("— changes requested")
    assert _focused(phone) == "decision-panel"
    expect(phone.locator("#live-announcer")).to_have_text("Changes requested.")
    j.shot(phone, "02-changes-requested-phone")

    mail = wait_for_mail(smtp_sink, staff_a.email)
    assert any("requested changes to" in (m["Subject"] or "") for m in mail), \
        [m["Subject"] for m in mail]

    sam = j.actor()
    sam.set_viewport_size(DESKTOP)
    j.sign_in(sam, staff_a.email)
    sam.goto(f"/deliverables/{deliverable_id}")
    asked = sam.locator(".changes-requested")
    expect(asked).to_contain_text(reason)
    expect(asked).to_contain_text("not classified yet")
    j.shot(sam, "03-staff-asked-to-classify-desktop")
    asked.get_by_label("A change request (outside the original scope)").check()
    asked.get_by_label("Note").fill("Quote CR-12 sent to Jane")
    asked.get_by_role("button", name="Save classification").click()
    expect(sam.locator(".changes-requested")).to_contain_text(
        "Change request · classified by Sam Staff")
    expect(sam.locator("#deliverable-main")).to_contain_text("Classified as change request.")
    j.shot(sam, "04-staff-classified-desktop")

    # A correction, from the same place.
    sam.locator(".changes-requested summary").click()
    sam.locator(".changes-requested").get_by_label("Within the original scope").check()
    sam.locator(".changes-requested").get_by_role("button", name="Save the correction").click()
    expect(sam.locator(".changes-requested")).to_contain_text("Within the original scope ·")

    sam.goto("/metrics")  # the period runs to today: this request counts, within scope
    tile = sam.locator("#metric-changes")
    expect(tile).to_contain_text("0 change requests · 1 within scope · 0 not classified yet")
    tile.scroll_into_view_if_needed()
    j.shot(sam, "05-metrics-desktop")

    phone_view = j.actor(phone=True)  # staff on a phone: the same step, no sideways scroll
    j.sign_in(phone_view, staff_a.email)
    phone_view.goto(f"/deliverables/{deliverable_id}")
    expect(phone_view.locator(".changes-requested")).to_be_visible()
    _no_sideways_scroll(phone_view)
    j.shot(phone_view, "06-staff-classified-phone")

    with reading():
        d = db.session.get(Deliverable, deliverable_id)
        [decision] = [a.decision for r in d.requests for a in r.approvers if a.decision]
        assert isinstance(decision, Decision)
        assert (decision.outcome, decision.text) == (Outcome.REJECTED, reason)
        assert decision.classification == RejectionScope.IN_SCOPE
        assert decision.classified_by_id == staff_a.id
        assert decision.classification_note == "Quote CR-12 sent to Jane"  # kept, corrected
        assert email  # the approver the link was sent to decided
