"""The conversation in minutes, in Chromium: a client comments on a phone, staff reply (and
keep a note to themselves), the every-minute sweep runs a few minutes later, each side
gets one email, and the client's email opens the review page at the reply.
Screenshots (pages and the emails) in test-artifacts/e2e/."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

import jobs.periodic
from portal.extensions import db
from portal.models import Comment, DeliverableState, utcnow
from tests.e2e.browser_api import expect
from tests.e2e.conftest import (
    ARTIFACTS,
    PHONE,
    Journey,
    Person,
    link_in,
    off_the_browser_thread,
    reading,
    text_of,
    wait_for_mail,
)

pytestmark = pytest.mark.e2e

QUESTION = "Can the logo be a little bigger on the first page?"
ANSWER = "Yes: version 2 will have it at twice the size."
NOTE = "Ask design whether the logo file is vector."
TO_THE_SPOT = re.compile(r"http://127\.0\.0\.1:\d+/r/[\w.\-]+#comment-(\d+)")
STAFF_SPOT = re.compile(r"http://127\.0\.0\.1:\d+(/deliverables/\d+#comment-(\d+))")


def _email_shot(j: Journey, message: Any, name: str) -> None:
    """The HTML email as a phone's mail app would lay it out (outside the page audit:
    an email is not a page of ours)."""
    page = j.browser.new_page(viewport=PHONE, device_scale_factor=2)
    try:
        page.set_content(message.get_body(preferencelist=("html",)).get_content())
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{j.test_name}-{name}.png"), full_page=True)
    finally:
        page.close()


def test_a_staff_reply_reaches_the_client_and_opens_at_the_reply(
        app, browser_page: Journey, staff_a: Person, make_deliverable, smtp_sink):
    j = browser_page
    d = make_deliverable(DeliverableState.DELIVERED)
    with reading():
        deliverable_id = d.id
        client_email = d.open_request.approvers[0].contact.email

    # The client, on a phone, asks a question beside the document.
    phone = j.actor(phone=True)
    phone.goto(link_in(wait_for_mail(smtp_sink, client_email)[0]))
    phone.get_by_label("Comment", exact=True).fill(QUESTION)
    phone.get_by_role("button", name="Post comment").click()
    expect(phone.locator("#comments")).to_contain_text(QUESTION)
    j.shot(phone, "01-question-phone")

    # Staff answer on the deliverable page, and keep a note the client never sees.
    desk = j.actor()
    j.sign_in(desk, staff_a.email)
    desk.goto(f"/deliverables/{deliverable_id}")
    desk.get_by_label("Reply").fill(NOTE)
    desk.get_by_label("Internal note (the client never sees it)").check()
    desk.get_by_role("button", name="Post").click()
    expect(desk.locator(".staff-thread")).to_contain_text(NOTE)
    desk.get_by_label("Reply").fill(ANSWER)
    desk.get_by_role("button", name="Post").click()
    expect(desk.locator(".staff-thread")).to_contain_text(ANSWER)
    j.shot(desk, "02-reply-desktop")

    # Three quiet minutes later the every-minute sweep runs: one email each way.
    later = (utcnow() + timedelta(minutes=3, seconds=5)).isoformat()
    report = off_the_browser_thread(app, jobs.periodic.every_minute, later)
    assert report["comment_notices"] == 2
    with reading():
        answer_id = db.session.scalars(select(Comment.id).where(Comment.body == ANSWER)).one()
        question_id = db.session.scalars(
            select(Comment.id).where(Comment.body == QUESTION)).one()

    reply = wait_for_mail(smtp_sink, client_email, 2)[-1]
    assert reply["Subject"] == "Sam Staff replied on Homepage v3"
    text = text_of(reply)
    assert ANSWER in text and NOTE not in text and QUESTION not in text
    link = TO_THE_SPOT.search(text)
    assert link and int(link.group(1)) == answer_id
    _email_shot(j, reply, "03-reply-email-phone")

    [notice] = [m for m in smtp_sink.to(staff_a.email) if "client comment" in m["Subject"]]
    assert notice["Subject"] == "1 new client comment on Homepage v3"
    assert QUESTION in text_of(notice) and ANSWER not in text_of(notice)
    _email_shot(j, notice, "04-owner-email-phone")

    # Opened from the mail app (a browser holding no grant yet): the review page, at the
    # reply. The link's redirect carries no fragment, so the browser keeps the email's.
    mail_app = j.actor(phone=True)
    mail_app.goto(link.group(0))
    expect(mail_app).to_have_url(re.compile(rf"/review/[\w-]+#comment-{answer_id}$"))
    spot = mail_app.locator(f"#comment-{answer_id}")
    expect(spot).to_contain_text(ANSWER)
    expect(spot).to_be_in_viewport()
    expect(mail_app.locator("#comments")).not_to_contain_text(NOTE)
    mail_app.screenshot(path=str(ARTIFACTS / f"{j.test_name}-05-opened-at-reply-phone.png"),
                        caret="initial")  # the screen as it opens, not the whole page

    # And the owner's link opens the deliverable page at the client's comment.
    staff_link = STAFF_SPOT.search(text_of(notice))
    assert staff_link and int(staff_link.group(2)) == question_id
    desk.goto("/")  # from elsewhere, so the page loads afresh (not a same-page jump)
    desk.goto(staff_link.group(1))
    expect(desk.locator(".timeline")).to_contain_text("Email: Sam Staff replied on Homepage v3")
    expect(desk.locator(f"#comment-{question_id}")).to_be_in_viewport()
    desk.screenshot(path=str(ARTIFACTS / f"{j.test_name}-06-owner-at-comment-desktop.png"),
                    caret="initial")
