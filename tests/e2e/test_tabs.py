"""Several review tabs in one browser: each decision and comment lands on what its tab shows.

One browser context (one cookie jar, one session) and several pages, as a person with a
handful of review emails has. The deliverables are made by the real workflow (the same
functions the staff pages call); everything the client does goes through Chromium.
"""
from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from portal import workflow
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    Comment,
    Deliverable,
    Outcome,
    Policy,
    RequestStatus,
    User,
)
from tests.conftest import future
from tests.e2e.browser_api import Page, expect
from tests.e2e.conftest import Journey, link_in, off_the_browser_thread, reading, wait_for_mail

pytestmark = pytest.mark.e2e

JANE, JOHN = ("Jane Doe", "jane@acme.example"), ("John Roe", "john@acme.example")


def _acme(make_client, make_project):
    client = make_client("Acme Corp", contacts=2)
    for contact, (name, email) in zip(client.contacts, (JANE, JOHN), strict=True):
        contact.name, contact.email = name, email
    db.session.commit()
    return make_project(client)


def _deliver(staff: User, colleague: User, project, title: str, contacts) -> Deliverable:
    d = workflow.create_deliverable(staff, project, title, f"The {title.lower()}.", future(14))
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf(title)), "proof.pdf", "First cut")
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    workflow.deliver(staff, d, contacts, Policy.PARALLEL, future(7))
    db.session.commit()
    return d


def _links(sink, email: str, count: int) -> list[str]:
    return [link_in(m) for m in wait_for_mail(sink, email, count)[:count]]


def _approve(page: Page, title: str, version: int = 1) -> None:
    page.get_by_role("button", name="Approve", exact=True).click()
    page.get_by_role("button", name=f"Approve version {version} of {title}", exact=True).click()


def _comment(page: Page, body: str) -> None:
    page.get_by_label("Comment").fill(body)
    page.get_by_role("button", name="Post comment").click()
    expect(page.locator("#comments .comment").filter(has_text=body)).to_be_visible()


def _outcomes(*deliverable_ids: int) -> dict[int, list[tuple[str, str, int]]]:
    """Per deliverable: (approver email, outcome, version number) of every decision."""
    found: dict[int, list[tuple[str, str, int]]] = {i: [] for i in deliverable_ids}
    for i in deliverable_ids:
        for version in db.session.get(Deliverable, i).versions:
            for request in version.requests:
                for approver in request.approvers:
                    if approver.decision:
                        found[i].append((approver.contact.email,
                                         approver.decision.outcome.value, version.number))
    return found


def _comments(*deliverable_ids: int) -> dict[int, list[tuple[str, str]]]:
    found: dict[int, list[tuple[str, str]]] = {i: [] for i in deliverable_ids}
    for comment in db.session.scalars(select(Comment).order_by(Comment.id)):
        found[comment.request.version.deliverable_id].append(
            (comment.author_contact.email, comment.body))
    return found


# --- 1. two requests side by side ---------------------------------------------------------

def test_two_requests_in_two_tabs_each_decision_lands_on_its_own(
        browser_page: Journey, staff, colleague, make_client, make_project, smtp_sink):
    j = browser_page
    project = _acme(make_client, make_project)
    jane = project.client.contacts[0]
    hero = _deliver(staff, colleague, project, "Hero banner", [jane])
    footer = _deliver(staff, colleague, project, "Footer", [jane])
    hero_id, footer_id = hero.id, footer.id
    db.session.commit()  # reading the ids began a transaction: let the server write
    hero_link, footer_link = _links(smtp_sink, JANE[1], 2)

    first = j.actor(phone=True)  # one context: one cookie jar, as one phone's browser
    first.goto(hero_link)
    second = first.context.new_page()
    second.goto(footer_link)
    expect(first.get_by_role("heading", level=1)).to_contain_text("Hero banner")
    expect(second.get_by_role("heading", level=1)).to_contain_text("Footer")

    # Back to the first tab, which opened first: its actions are still its own.
    _comment(first, "Brighter, please")
    _comment(second, "Footer looks right")
    _approve(first, "Hero banner")
    expect(first.locator("#decision-panel")).to_contain_text("Jane Doe — approved")
    second.get_by_role("button", name="Request changes").click()
    second.get_by_label("What should change?").fill("Wrong phone number")
    second.get_by_role("button", name="Request changes to version 1 of Footer").click()
    expect(second.locator("#decision-panel")).to_contain_text("Jane Doe — changes requested")
    j.shot(first, "01-hero-approved-phone")
    j.shot(second, "02-footer-rejected-phone")

    with reading():
        assert _outcomes(hero_id, footer_id) == {
            hero_id: [(JANE[1], Outcome.APPROVED.value, 1)],
            footer_id: [(JANE[1], Outcome.REJECTED.value, 1)]}
        assert _comments(hero_id, footer_id) == {
            hero_id: [(JANE[1], "Brighter, please")],
            footer_id: [(JANE[1], "Footer looks right")]}


def test_five_tabs_of_one_browser_each_act_on_what_they_show(
        browser_page: Journey, staff, colleague, make_client, make_project, smtp_sink):
    """The issue's bar: five review links open in five tabs; every comment and decision,
    made in an order unlike the order of opening, lands on its own tab's document."""
    j = browser_page
    project = _acme(make_client, make_project)
    jane = project.client.contacts[0]
    titles = ["Logo", "Brochure", "Poster", "Banner", "Flyer"]
    ids = [_deliver(staff, colleague, project, title, [jane]).id for title in titles]
    db.session.commit()
    links = _links(smtp_sink, JANE[1], len(titles))

    first = j.actor()
    opened = [first] + [first.context.new_page() for _ in titles[1:]]
    for tab, link in zip(opened, links, strict=True):
        tab.goto(link)
    # Which tab shows which deliverable, as read off each page's heading.
    by_title = {tab.locator("h1").inner_text().split(" · ")[0].strip(): tab for tab in opened}
    tabs = [by_title[title] for title in titles]
    for i in (3, 0, 4, 1, 2):
        _comment(tabs[i], f"Note on {titles[i]}")
    for i in (4, 2, 0, 3, 1):
        _approve(tabs[i], titles[i])
        expect(tabs[i].locator("#decision-panel")).to_contain_text("Jane Doe — approved")

    with reading():
        assert _outcomes(*ids) == {i: [(JANE[1], "approved", 1)] for i in ids}
        assert _comments(*ids) == {i: [(JANE[1], f"Note on {t}")]
                                   for i, t in zip(ids, titles, strict=True)}


# --- 2. a new version while a tab is open ---------------------------------------------------

def _cancel_and_redeliver(staff_id: int, colleague_id: int, deliverable_id: int) -> None:
    staff, colleague = db.session.get(User, staff_id), db.session.get(User, colleague_id)
    d = db.session.get(Deliverable, deliverable_id)
    workflow.cancel_request(staff, d.open_request)
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf("Homepage, second cut")),
                            "proof-v2.pdf", "Brighter hero")
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    workflow.deliver(staff, d, d.project.client.contacts[:1], Policy.PARALLEL, future(7))
    db.session.commit()


def test_a_tab_left_on_version_1_cannot_decide_on_version_2(
        app, browser_page: Journey, staff, colleague, make_client, make_project, smtp_sink):
    j = browser_page
    project = _acme(make_client, make_project)
    d = _deliver(staff, colleague, project, "Homepage", project.client.contacts[:1])
    deliverable_id, staff_id, colleague_id = d.id, staff.id, colleague.id
    db.session.commit()
    [v1_link] = _links(smtp_sink, JANE[1], 1)

    old = j.actor()
    old.goto(v1_link)
    expect(old.get_by_role("heading", level=1)).to_contain_text("version 1")
    old.get_by_role("button", name="Approve", exact=True).click()  # the form is on screen

    off_the_browser_thread(app, _cancel_and_redeliver, staff_id, colleague_id, deliverable_id)
    v2_link = _links(smtp_sink, JANE[1], 2)[1]
    new = old.context.new_page()
    new.goto(v2_link)
    expect(new.get_by_role("heading", level=1)).to_contain_text("version 2")

    old.get_by_role("button", name="Approve version 1 of Homepage", exact=True).click()
    alert = old.get_by_role("alert")
    expect(alert).to_contain_text("This page is out of date: version 2 of Homepage is "
                                  "waiting for you. Nothing was recorded.")
    j.shot(old, "01-out-of-date-desktop")
    with reading():
        assert _outcomes(deliverable_id) == {deliverable_id: []}

    old.get_by_role("link", name="Open version 2 of Homepage").click()
    expect(old.get_by_role("heading", level=1)).to_contain_text("version 2")
    _approve(old, "Homepage", version=2)
    expect(old.locator("#decision-panel")).to_contain_text("Jane Doe — approved")
    with reading():
        assert _outcomes(deliverable_id) == {deliverable_id: [(JANE[1], "approved", 2)]}
        d = db.session.get(Deliverable, deliverable_id)
        statuses = [r.status for r in sorted(d.requests, key=lambda r: r.id)]
        assert statuses == [RequestStatus.CANCELLED, RequestStatus.APPROVED]


# --- 3. another site moves the browser to another contact's link ----------------------------

class _Lure(BaseHTTPRequestHandler):
    """Another site: its page sends the browser, top level, to a review link of its choice."""

    target = ""

    def do_GET(self) -> None:
        body = (f'<!doctype html><title>Win a prize</title><a id="go" href="{self.target}">'
                "Claim your prize</a>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def other_site() -> Iterator[tuple[ThreadingHTTPServer, type[_Lure]]]:
    """A second origin on loopback, 'localhost' rather than 127.0.0.1: another site."""
    handler = type("Lure", (_Lure,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_another_site_cannot_move_an_open_tab_to_another_contacts_request(
        browser_page: Journey, staff, colleague, make_client, make_project, smtp_sink,
        other_site):
    j = browser_page
    project = _acme(make_client, make_project)
    jane, john = project.client.contacts
    mine = _deliver(staff, colleague, project, "Brochure", [jane])
    theirs = _deliver(staff, colleague, project, "Price list", [john])
    mine_id, theirs_id, john_id = mine.id, theirs.id, john.id
    db.session.commit()
    [jane_link] = _links(smtp_sink, JANE[1], 1)
    [john_link] = _links(smtp_sink, JOHN[1], 1)
    server, lure = other_site
    lure.target = john_link

    tab = j.actor(phone=True)
    tab.goto(jane_link)
    expect(tab.get_by_role("heading", level=1)).to_contain_text("Brochure")
    elsewhere = tab.context.new_page()
    elsewhere.goto(f"http://localhost:{server.server_address[1]}/")
    elsewhere.locator("#go").click()  # a top-level GET carries SameSite=Lax cookies
    expect(elsewhere.get_by_role("heading", level=1)).to_contain_text("Price list")

    _comment(tab, "Page 2 has a typo")
    _approve(tab, "Brochure")
    expect(tab.locator("#decision-panel")).to_contain_text("Jane Doe — approved")
    j.shot(tab, "01-own-request-approved-phone")
    with reading():
        assert _outcomes(mine_id, theirs_id) == {mine_id: [(JANE[1], "approved", 1)],
                                                 theirs_id: []}
        assert _comments(mine_id, theirs_id) == {mine_id: [(JANE[1], "Page 2 has a typo")],
                                                 theirs_id: []}
        john_approver = db.session.scalars(select(Approver).where(
            Approver.contact_id == john_id)).one()
        assert john_approver.status == ApproverStatus.INVITED

    # The tab's URL names Jane's approver: nothing another page opened changes that.
    assert re.search(r"/review/[\w-]+$", tab.url)
