"""Posting comments on the review page with htmx: the answer is only the new comment, and
what the person sees afterwards (thread, count, pins, an empty form) is what a reload shows."""
from __future__ import annotations

import io

import pytest

from portal import workflow
from portal.extensions import db
from portal.models import DeliverableState, Policy, ReviewRequest
from portal.workflow.comments import post_comment
from portal.workflow.links import issue_token
from tests.conftest import future, on_screen
from tests.e2e.browser_api import Page, expect
from tests.e2e.conftest import Journey, reading
from tests.test_renders import three_page_pdf

pytestmark = pytest.mark.e2e


def _tap(page: Page, number: int, x: float, y: float) -> None:
    layer = page.locator(f"#page-{number} svg.layer")
    layer.scroll_into_view_if_needed()
    expect(page.locator(f"#page-{number} img")).to_be_visible()
    box = layer.bounding_box()
    assert box is not None
    layer.tap(position={"x": box["width"] * x, "y": box["height"] * y})
    expect(page.locator(".pin-chip")).to_contain_text(f"Pinned to page {number}")


def test_posting_adds_the_comment_and_counts_without_redrawing_the_thread(
        browser_page: Journey, staff, colleague, make_deliverable):
    j = browser_page
    d = make_deliverable(DeliverableState.DRAFT, with_version=False, approvers=2)
    workflow.upload_version(staff, d, io.BytesIO(three_page_pdf()), "brochure.pdf", "First cut")
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    request = workflow.deliver(staff, d, d.project.client.contacts[:2], Policy.PARALLEL,
                               future(7))
    db.session.commit()
    with reading():
        link = f"/r/{issue_token(request.approvers[0])}"
        request_id = request.id

    phone = j.actor(phone=True)
    phone.goto(link)
    expect(phone.locator("#comment-count")).to_have_text("(0)")
    expect(phone.locator("#thread")).to_contain_text("No comments yet.")
    phone.evaluate("document.getElementById('thread').dataset.kept = 'yes'")

    # A pinned comment: it joins the thread with its pin's number, its marker joins page 2,
    # the form empties and the pin is cleared.
    _tap(phone, 2, 0.3, 0.1)
    phone.get_by_label("Comment", exact=True).fill("Bigger headline")
    phone.get_by_role("button", name="Post comment").click()
    expect(phone.locator("#thread .comment")).to_have_count(1)
    expect(phone.locator("#thread")).to_contain_text("p. 2 · #1")
    expect(phone.locator("#thread")).not_to_contain_text("No comments yet.")
    expect(phone.locator("#comment-count")).to_have_text("(1)")
    expect(phone.locator("#page-2 .marker")).to_have_count(1)
    expect(phone.locator(".viewer .draft")).to_have_count(0)
    expect(phone.get_by_label("Comment", exact=True)).to_have_value("")
    expect(phone.locator(".pin-chip")).to_be_hidden()
    expect(phone.locator('#comment-form select[name="page"]')).to_have_value("")
    assert phone.evaluate("document.getElementById('thread').dataset.kept") == "yes", \
        "the thread was redrawn, not added to"
    j.shot(phone, "01-pinned-comment-added-phone")

    # Someone else comments meanwhile; the next post brings their comment along, in order.
    with reading():
        other = db.session.get(ReviewRequest, request_id).approvers[1]
        post_comment(other.contact, other.request, "From my colleague",
                     seen_sha256=on_screen(other))
        db.session.commit()
    _tap(phone, 3, 0.5, 0.5)  # the page's pin still works after a post
    phone.get_by_label("Comment", exact=True).fill("And the footer")
    phone.get_by_role("button", name="Post comment").click()
    expect(phone.locator("#thread .comment")).to_have_count(3)
    expect(phone.locator("#thread .comment").nth(1)).to_contain_text("From my colleague")
    expect(phone.locator("#thread .comment").nth(2)).to_contain_text("p. 3 · #2")
    expect(phone.locator("#comment-count")).to_have_text("(3)")
    expect(phone.locator("#page-3 .marker")).to_have_count(1)

    # An empty comment: the message beside the form; nothing is added.
    phone.get_by_role("button", name="Post comment").click()
    expect(phone.locator("#comment-error")).to_contain_text("Write a comment first.")
    expect(phone.locator("#thread .comment")).to_have_count(3)
    j.shot(phone, "02-empty-comment-phone")

    seen = phone.locator("#thread").inner_text()
    phone.reload()
    expect(phone.locator("#comment-count")).to_have_text("(3)")
    assert phone.locator("#thread").inner_text() == seen
    expect(phone.locator(".marker")).to_have_count(2)
