"""Browser journey: the staff dashboard on a desktop (1280x800) and a phone (390x844).

Sam sees his own work by default (what waits for him to move it, what the client has
commented on since he last looked), switches to everyone's, reads the new comments on a
phone (the page's beacon marks them read), and Cora does the same without JavaScript.
No page is wider than its viewport. Screenshots in test-artifacts/e2e/."""
from __future__ import annotations

import re

import pytest

from portal.extensions import db
from portal.models import CommentSeenMark, Deliverable, DeliverableState, Role, User
from portal.workflow.comments import post_comment
from tests.conftest import on_screen
from tests.e2e.browser_api import expect
from tests.e2e.conftest import TIMEOUT_MS, Journey, Person, reading

pytestmark = pytest.mark.e2e

S = DeliverableState
DESKTOP = {"width": 1280, "height": 800}
EVERYONE = "Everyone\u2019s"  # the switch's link, with a typographic apostrophe
LONG = "Quarterly investor relations presentation deck for the annual general meeting"


def _titled(d: Deliverable, title: str) -> int:
    d.title, deliverable_id = title, d.id
    db.session.commit()  # and touch nothing after it: that would begin a transaction
    return deliverable_id


def _client_comment(deliverable_id: int, text: str) -> int:
    with reading():
        d = db.session.get(Deliverable, deliverable_id)
        approver = d.open_request.approvers[0]
        comment_id = post_comment(approver.contact, d.open_request, text,
                                  seen_sha256=on_screen(approver)).id
    return comment_id


def _no_sideways_scroll(page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] == widths[1], f"{page.url} is {widths[0]} px wide in a {widths[1]} px window"


def _marks() -> list[tuple[int, int, int]]:
    with reading():
        return [(m.user_id, m.deliverable_id, m.comment_id)
                for m in db.session.query(CommentSeenMark).order_by(CommentSeenMark.id)]


def _row(scope, title: str):
    """The table row (in a page or a section) whose deliverable link is `title`."""
    page = getattr(scope, "page", scope)  # `has` is matched inside each row: from the page
    return scope.locator("tr").filter(has=page.get_by_role("link", name=title, exact=True))


def test_dashboard_mine_everyone_and_new_client_comments(
        browser_page: Journey, staff_a: Person, colleague_b: Person, make_deliverable,
        make_project, make_user):
    j = browser_page
    olive = make_user(Role.STAFF, email="olive@agency.example", name="Olive Other")
    olives = make_project(owner=olive)
    _titled(make_deliverable(S.DRAFT, with_version=False), "Poster, no file yet")
    ready_id = _titled(make_deliverable(S.READY), LONG)
    _titled(make_deliverable(S.IN_REVIEW, project=olives), "Olive's leaflet")
    _titled(make_deliverable(S.DRAFT, project=olives), "Olive's banner")
    talked_id = _titled(make_deliverable(S.DELIVERED, approvers=2), "Landing page copy")
    _titled(make_deliverable(S.APPROVED), "Brochure")
    first = _client_comment(talked_id, "The headline is too long.")
    _client_comment(talked_id, "Can we use the green from the brand book?")

    # Sam, desktop: his own work by default.
    sam = j.actor()
    sam.set_viewport_size(DESKTOP)
    j.sign_in(sam, staff_a.email)
    expect(sam.get_by_role("heading", name="What needs attention")).to_be_visible()
    switch = sam.get_by_role("navigation", name="Whose deliverables")
    expect(switch.get_by_role("link", name="Mine")).to_have_attribute("aria-current", "page")
    to_move = sam.locator("#section-to_move")
    expect(to_move.get_by_role("heading")).to_contain_text("Waiting for you to move it")
    expect(_row(sam, "Poster, no file yet")).to_contain_text(
        "Sam Staff: upload and submit for review")
    expect(to_move.locator("tr").filter(has_text=LONG)).to_contain_text(
        "Sam Staff: deliver to the client")
    expect(sam.get_by_text("Olive's banner")).to_have_count(0)
    talked = _row(sam.locator("#section-with_client"), "Landing page copy")
    expect(talked.locator(".badge.unseen")).to_have_text("2 new client comments")
    _no_sideways_scroll(sam)
    j.shot(sam, "01-mine-desktop")

    # Everyone's: Olive's work too, and the switch says which is on.
    switch.get_by_role("link", name=EVERYONE).click()
    expect(sam).to_have_url(re.compile(r"scope=everyone"))
    expect(switch.get_by_role("link", name=EVERYONE)).to_have_attribute(
        "aria-current", "page")
    expect(switch.get_by_role("link", name="Mine")).not_to_have_attribute("aria-current", "page")
    expect(sam.locator("#section-to_move")).to_contain_text("Olive's banner")
    expect(sam.locator("#section-my_reviews")).to_contain_text("Olive's leaflet")
    expect(sam.locator("#section-to_move").get_by_role("heading")).to_contain_text(
        "Waiting for the team to move it")
    _no_sideways_scroll(sam)
    j.shot(sam, "02-everyone-desktop")

    # Sam, phone: rows stack into deliverable, state and whose turn; nothing scrolls sideways.
    phone = j.actor(phone=True)
    j.sign_in(phone, staff_a.email)
    _no_sideways_scroll(phone)
    row = _row(phone.locator("#section-to_move"), LONG)
    expect(row.locator(".col-state")).to_have_text("ready")
    expect(row.locator(".col-turn")).to_have_text("Sam Staff: deliver to the client")
    for hidden in (".col-version", ".col-waiting", ".col-due", ".col-activity"):
        expect(row.locator(hidden)).to_be_hidden()
    box = row.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
    j.shot(phone, "03-mine-phone")

    # The badge leads to the comments; the page marks them read by itself (a POST).
    badge = _row(phone.locator("#section-with_client"), "Landing page copy").locator(
        ".badge.unseen")
    expect(badge).to_have_text("2 new client comments")
    badge.click()
    notice = phone.locator("#unseen-comments")
    expect(notice).to_contain_text("2 new client comments since you last opened this page")
    expect(notice.get_by_role("status")).to_have_text("Marked as read.")
    expect(phone.locator(".thread .badge.unseen")).to_have_text(["new", "new"])
    expect(notice.get_by_role("link", name="Read the first one")).to_have_attribute(
        "href", f"#comment-{first}")
    _no_sideways_scroll(phone)
    j.shot(phone, "04-new-comments-marked-read-phone")
    with reading():
        newest = max(c.id for c in db.session.get(Deliverable, talked_id).open_request.comments)
    assert _marks() == [(staff_a.id, talked_id, newest)]
    phone.goto("/")
    expect(phone.locator(".badge.unseen")).to_have_count(0)

    # A new comment arrives: one new, for Sam; the list shows it too.
    _client_comment(talked_id, "Also, the footer link is broken.")
    phone.goto("/deliverables")
    expect(_row(phone, "Landing page copy").locator(".badge.unseen")).to_have_text(
        "1 new client comment")
    _no_sideways_scroll(phone)
    j.shot(phone, "05-list-one-new-phone")
    sam.goto("/deliverables")
    _no_sideways_scroll(sam)
    j.shot(sam, "06-list-desktop")

    # Cora, without JavaScript: everyone's board, then the Mark as read button.
    context = j.browser.new_context(base_url=j.base_url, viewport=DESKTOP,
                                    java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    j.contexts.append(context)
    cora = context.new_page()
    j.sign_in(cora, colleague_b.email)
    cora.get_by_role("link", name=EVERYONE).click()
    talked = _row(cora.locator("#section-with_client"), "Landing page copy")
    expect(talked.locator(".badge.unseen")).to_have_text("3 new client comments")
    talked.get_by_role("link", name="Landing page copy").click()
    expect(cora.locator("#unseen-comments")).to_contain_text("3 new client comments")
    assert len(_marks()) == 1  # opening the page (a GET) wrote nothing
    j.shot(cora, "07-new-comments-no-js-desktop")
    cora.get_by_role("button", name="Mark as read").click()
    expect(cora.get_by_text("Marked as read.")).to_be_visible()
    expect(cora.locator("#unseen-comments")).to_have_count(0)
    cora.goto("/?scope=everyone")
    expect(cora.locator(".badge.unseen")).to_have_count(0)
    with reading():
        cora_mark = db.session.query(CommentSeenMark).filter_by(user_id=colleague_b.id).one()
        assert cora_mark.comment_id > newest
        assert db.session.get(User, colleague_b.id).name == "Cora Colleague"
    _ = ready_id
