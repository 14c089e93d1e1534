"""Observers (CC): contacts kept informed of a request who can look (and comment when staff
allow it) but never decide. Through the real pages (staff's delivery form and deliverable
page, the observer's link from a real email in the SMTP sink) on SQLite and PostgreSQL.
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from portal.extensions import db
from portal.models import (
    Approver,
    Comment,
    Decision,
    Deliverable,
    DeliverableState,
    Observer,
    ReviewRequest,
)
from portal.notifications.reactions import request_data
from portal.workflow.policies import waiting_for
from portal.workflow.turns import whose_turn
from tests.conftest import SmtpSink, future

S = DeliverableState
APPROVER_LINK = re.compile(r"http://portal\.test(/r/[\w.\-]+)")
OBSERVER_LINK = re.compile(r"http://portal\.test(/r/o/[\w.\-]+)")


def _text(email: Any) -> str:
    return email.get_body(preferencelist=("plain",)).get_content()


def _words(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'").replace(
        "&#34;", '"').replace("&quot;", '"').split())


def _ready(make_client, make_project, make_deliverable, contacts: int = 4) -> Deliverable:
    return make_deliverable(S.READY, project=make_project(make_client(contacts=contacts)))


def _deliver(sam, d: Deliverable, approvers: list[Any], observers: list[Any] = (),
             policy: str = "parallel", **fields: str):
    form = MultiDict([("contact_id", str(c.id)) for c in approvers]
                     + [("observer_id", str(c.id)) for c in observers])
    form.update({"policy": policy, "due_date": future(7).isoformat(), **fields})
    return sam.post(f"/deliverables/{d.id}/deliver", form)


def _request(d: Deliverable) -> ReviewRequest:
    return db.session.scalars(select(ReviewRequest).where(
        ReviewRequest.version_id == d.current_version.id)).one()


def _invitations(mail: SmtpSink, contact: Any) -> list[Any]:
    return [m for m in mail.to(contact.email) if "follow the review" in m["Subject"]]


def _outcomes(mail: SmtpSink, contact: Any) -> list[Any]:
    return [m for m in mail.to(contact.email) if "follow the review" not in m["Subject"]]


class Follower:
    """An observer with their own browser, arriving from the link in their email."""

    def __init__(self, browser: Any, mail: SmtpSink, contact: Any) -> None:
        self.browser, self.contact = browser, contact
        [email] = _invitations(mail, contact)
        self.link = OBSERVER_LINK.search(_text(email)).group(1)
        opened = browser.get(self.link)
        assert opened.status_code == 303, opened.status_code
        self.page = opened.headers["Location"]
        assert self.page.startswith("/observe/")

    def html(self) -> tuple[int, str]:
        response = self.browser.get(self.page)
        return response.status_code, response.get_data(as_text=True)

    def comment(self, body: str):
        self.html()  # what is on screen, as the form would send it
        return self.browser.post(f"{self.page}/comments", {
            "body": body, "sha256": self.browser.on_screen})


def _approver_page(browser: Any, mail: SmtpSink, contact: Any) -> str:
    [email] = [m for m in mail.to(contact.email) if "please review" in m["Subject"]]
    assert browser.get(APPROVER_LINK.search(_text(email)).group(1)).status_code == 303
    return browser.review


def test_added_at_delivery_the_email_link_opens_a_read_only_page(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _ready(make_client, make_project, make_deliverable)
    jane, john, olga, _ = d.project.client.contacts
    browser.login(staff.email)
    assert _deliver(browser, d, [jane, john], [olga]).status_code == 302
    request = _request(d)
    [observer] = request.observers
    assert (observer.contact_id, observer.may_comment) == (olga.id, False)
    assert [a.contact_id for a in request.approvers] == [jane.id, john.id]
    assert observer.link_expires_at is not None

    mail.wait_for(3)
    [invitation] = _invitations(mail, olga)
    words = _text(invitation)
    assert "the decision is for" in words and jane.name in words and john.name in words
    assert not [m for m in mail.to(olga.email) if "please review" in m["Subject"]]

    follower = Follower(make_browser(), mail, olga)
    status, html = follower.html()
    assert status == 200
    page = _words(html)
    assert d.title in page
    assert (f"You can view this and follow the outcome; the decision is for {jane.name}, "
            f"{john.name}.") in page
    assert f"Waiting for {jane.name}, {john.name} to decide" in page
    assert 'value="approve"' not in html and "/decision" not in html
    assert 'id="comment-form"' not in html  # not allowed to comment
    assert "reply to the email" in page

    # The beacon records when they looked; the approvers' "viewed" is untouched.
    assert follower.browser.post(f"{follower.page}/viewed",
                                 {"sha256": follower.browser.on_screen}).status_code == 204
    db.session.refresh(observer)
    assert observer.last_viewed_at is not None
    assert all(a.last_viewed_at is None for a in request.approvers)

    # Staff see who follows the request.
    staff_page = _words(browser.get(f"/deliverables/{d.id}").get_data(as_text=True))
    assert "Kept informed (can view only)" in staff_page and olga.email in staff_page


def test_added_later_from_the_deliverable_page_may_comment(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _ready(make_client, make_project, make_deliverable)
    jane, _, olga, _ = d.project.client.contacts
    browser.login(staff.email)
    _deliver(browser, d, [jane])
    request = _request(d)
    added = browser.post(f"/requests/{request.id}/observers",
                         {"contact_id": str(olga.id), "may_comment": "1"})
    assert added.status_code == 302
    mail.wait_for(2)
    follower = Follower(make_browser(), mail, olga)
    status, html = follower.html()
    assert status == 200 and 'id="comment-form"' in html
    assert "and comment beside it" in _words(html)

    posted = follower.comment("Looks good from finance.")
    assert posted.status_code == 303
    [comment] = db.session.scalars(select(Comment)).all()
    assert (comment.author_contact_id, comment.request_id, comment.internal) == (
        olga.id, request.id, False)
    assert "Looks good from finance." in follower.html()[1]
    # The approver sees it in the thread too (a client comment like theirs).
    approver = make_browser()
    page = approver.get(_approver_page(approver, mail, jane)).get_data(as_text=True)
    assert "Looks good from finance." in page


def test_an_observer_without_leave_to_comment_cannot(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _ready(make_client, make_project, make_deliverable)
    jane, _, olga, _ = d.project.client.contacts
    browser.login(staff.email)
    _deliver(browser, d, [jane], [olga])
    mail.wait_for(2)
    follower = Follower(make_browser(), mail, olga)
    refused = follower.comment("Let me in")
    assert refused.status_code == 403
    assert "has not asked for your comments" in _words(refused.get_data(as_text=True))
    assert db.session.scalar(select(func.count(Comment.id))) == 0


def test_the_outcome_email_arrives_once_per_observer(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _ready(make_client, make_project, make_deliverable)
    jane, john, olga, oscar = d.project.client.contacts
    browser.login(staff.email)
    _deliver(browser, d, [jane, john], [olga, oscar], policy="any_one",
             changes_end_request="1")
    mail.wait_for(4)
    approver = make_browser()
    page = _approver_page(approver, mail, jane)
    approver.get(page)
    assert approver.post(f"{page}/decision", {"choice": "approve"}).status_code == 303
    request = _request(d)
    assert request.status.value == "approved"
    db.session.commit()  # any later commit sends nothing twice (idempotency key)

    for contact in (olga, oscar):
        [outcome] = _outcomes(mail, contact)
        assert outcome["Subject"].endswith(f"{d.title} (version 1) is approved.")
        body = _text(outcome)
        assert f"Decided by {jane.name}." in body
        assert "/r/o/" in body  # they can still read the page
    # The observers' link from the outcome email still opens the closed page, read-only.
    follower = Follower(make_browser(), mail, olga)
    status, html = follower.html()
    assert status == 200 and f"Approved by {jane.name}" in _words(html)
    assert 'id="comment-form"' not in html


def test_a_cancellation_tells_observers_and_kills_their_links(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _ready(make_client, make_project, make_deliverable)
    jane, _, olga, _ = d.project.client.contacts
    browser.login(staff.email)
    _deliver(browser, d, [jane], [olga])
    mail.wait_for(2)
    follower = Follower(make_browser(), mail, olga)
    assert browser.post(f"/requests/{_request(d).id}/cancel").status_code == 302
    mail.wait_for(3)
    [outcome] = _outcomes(mail, olga)
    assert "withdrew" in outcome["Subject"] and "/r/o/" not in _text(outcome)
    assert follower.html()[0] == 410
    assert follower.browser.get(follower.link).status_code == 410


def test_revoking_kills_the_link_and_the_outcome_email(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _ready(make_client, make_project, make_deliverable)
    jane, _, olga, _ = d.project.client.contacts
    browser.login(staff.email)
    _deliver(browser, d, [jane], [olga])
    mail.wait_for(2)
    follower = Follower(make_browser(), mail, olga)
    [observer] = _request(d).observers
    assert browser.post(f"/observers/{observer.id}/revoke").status_code == 302
    status, html = follower.html()
    assert status == 410 and "no longer works" in _words(html) and d.title not in html
    assert make_browser().get(follower.link).status_code == 410
    assert follower.browser.get(f"{follower.page}/files/{d.current_version.id}"
                                ).status_code == 410

    approver = make_browser()
    page = _approver_page(approver, mail, jane)
    approver.get(page)
    approver.post(f"{page}/decision", {"choice": "approve"})
    assert _request(d).status.value == "approved"
    assert not _outcomes(mail, olga)  # a revoked observer hears nothing more

    # A resend brings them back with a fresh link; the old one stays dead.
    assert browser.post(f"/observers/{observer.id}/resend").status_code == 302
    assert follower.browser.get(follower.link).status_code == 410
    [resent] = _outcomes(mail, olga)  # the request is closed: the email says how it ended
    assert resent["Subject"].endswith("is approved.")
    fresh = make_browser()
    opened = fresh.get(OBSERVER_LINK.search(_text(resent)).group(1))
    assert opened.status_code == 303 and fresh.get(opened.headers["Location"]).status_code == 200


def test_a_contact_cannot_be_approver_and_observer_at_once(
        mail, app, browser, staff, make_client, make_project, make_deliverable):
    d = _ready(make_client, make_project, make_deliverable)
    jane, john, olga, _ = d.project.client.contacts
    browser.login(staff.email)
    refused = _deliver(browser, d, [jane, john], [john])
    assert refused.status_code == 422
    assert "cannot also be an observer" in _words(refused.get_data(as_text=True))
    assert db.session.scalar(select(func.count(ReviewRequest.id))) == 0
    assert db.session.scalar(select(func.count(Observer.id))) == 0

    _deliver(browser, d, [jane], [olga])
    request = _request(d)
    later = browser.post(f"/requests/{request.id}/observers", {"contact_id": str(jane.id)})
    assert later.status_code == 422
    again = browser.post(f"/requests/{request.id}/observers", {"contact_id": str(olga.id)})
    assert again.status_code == 422 and "already follows" in _words(again.get_data(as_text=True))
    assert db.session.scalar(select(func.count(Observer.id))) == 1


def test_observers_change_no_policy_count_or_turn(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    """The same delivery with and without observers: whose turn, what the request waits
    for, its approvers, the webhook's data and the reminders are the same."""
    seen = []
    for observers in (False, True):
        d = _ready(make_client, make_project, make_deliverable)
        jane, john, olga, oscar = d.project.client.contacts
        browser.login(staff.email)
        _deliver(browser, d, [jane, john], [olga, oscar] if observers else [],
                 policy="sequential")
        request = _request(d)
        data = request_data(request)
        seen.append((
            whose_turn(d).label.replace(jane.name, "J").replace(john.name, "K"),
            waiting_for(request).replace(jane.name, "J"),
            [a["status"] for a in data["approvers"]], len(data["approvers"]),
            db.session.scalar(select(func.count(Approver.id)).where(
                Approver.request_id == request.id)),
            sorted(a.next_reminder_at is not None for a in request.approvers)))
        assert len(request.observers) == (2 if observers else 0)
    assert seen[0] == seen[1]
    assert db.session.scalar(select(func.count(Decision.id))) == 0


def test_an_observer_reads_in_their_contact_language(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _ready(make_client, make_project, make_deliverable)
    jane, _, olga, _ = d.project.client.contacts
    olga.language = "de"
    db.session.commit()
    browser.login(staff.email)
    _deliver(browser, d, [jane], [olga])
    mail.wait_for(2)
    [invitation] = [m for m in mail.to(olga.email) if "Verfolgen Sie die Prüfung" in m["Subject"]]
    link = OBSERVER_LINK.search(_text(invitation)).group(1)
    reader = make_browser()
    opened = reader.get(link)
    assert opened.status_code == 303
    page = _words(reader.get(opened.headers["Location"]).get_data(as_text=True))
    assert ("Sie können dies ansehen und das Ergebnis verfolgen; die Entscheidung treffen "
            f"{jane.name}.") in page
    assert "Stand der Prüfung" in page
