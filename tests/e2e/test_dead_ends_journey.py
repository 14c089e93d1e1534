"""No dead ends, in a real browser, on a phone (390x844) and a desktop (1280x800):
staff start a deliverable from the dashboard and give it the description delivery needs;
an old client link leads to the newer version; every failure a client can meet is a page
of theirs with a way on, never the staff sign-in."""
from __future__ import annotations

import io
import re

import pytest

from portal import workflow
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import Approver, Comment, Deliverable, DeliverableState, Outcome, Policy, User
from portal.workflow.links import issue_token
from tests.conftest import future, on_screen, run_out_link
from tests.e2e.browser_api import Page, expect
from tests.e2e.conftest import Journey, Person, link_in, reading, wait_for_mail

pytestmark = pytest.mark.e2e
SIZES = {"phone": True, "desktop": False}


def _fits(page: Page) -> None:
    """No sideways scroll: the document is exactly as wide as the viewport."""
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") == width, page.url


def _no_sign_in(page: Page) -> None:
    expect(page.locator("header.client-bar")).to_be_visible()
    assert page.locator("a[href*='/login']").count() == 0, page.url


@pytest.mark.parametrize("size", SIZES)
def test_staff_start_a_deliverable_from_the_dashboard_and_add_its_description(
        browser_page: Journey, staff_a: Person, make_client, make_project, size: str):
    j = browser_page
    acme = make_client("Acme Corp")
    make_client("Bare Co", contacts=1)
    make_project(acme)
    db.session.commit()

    sam = j.actor(phone=SIZES[size])
    j.sign_in(sam, staff_a.email)
    sam.get_by_role("link", name="New deliverable").click()
    expect(sam.get_by_role("heading", name="New deliverable")).to_be_visible()
    sam.get_by_label("Client").select_option(label="Bare Co")
    sam.get_by_role("button", name="Continue").click()
    expect(sam.get_by_text("Bare Co has no projects yet")).to_be_visible()
    _fits(sam)
    j.shot(sam, f"01-no-projects-{size}")
    sam.get_by_label("Client").select_option(label="Acme Corp")
    sam.get_by_role("button", name="Change client").click()
    expect(sam.get_by_label("Project")).to_have_value(re.compile(r"\d+"))
    sam.get_by_label("Title").fill("Spring brochure")
    _fits(sam)
    j.shot(sam, f"02-new-deliverable-form-{size}")
    sam.get_by_role("button", name="Create deliverable").click()
    expect(sam.get_by_role("heading", name="Spring brochure")).to_be_visible()
    expect(sam.locator("dl.facts")).to_contain_text("none yet")

    sam.get_by_role("link", name="Edit details").click()
    sam.get_by_label("Title").fill("Spring brochure, 8 pages")
    sam.get_by_label("Description").fill("Eight pages: cover, six spreads, back.")
    sam.get_by_label("Due date").fill("2020-01-01")
    sam.get_by_role("button", name="Save details").click()
    expect(sam.get_by_role("alert")).to_contain_text("is in the past")
    _fits(sam)
    j.shot(sam, f"03-edit-refused-{size}")
    sam.get_by_label("Due date").fill(future(21).isoformat())
    sam.get_by_role("button", name="Save details").click()
    expect(sam.get_by_text("Saved: title, description, due date.")).to_be_visible()
    expect(sam.locator("dl.facts")).to_contain_text("Eight pages: cover")
    expect(sam.get_by_text("Details edited")).to_be_visible()  # the timeline
    _fits(sam)
    j.shot(sam, f"04-details-saved-{size}")
    with reading():
        d = db.session.query(Deliverable).one()
        assert (d.title, d.due_date) == ("Spring brochure, 8 pages", future(21))


@pytest.mark.parametrize("size", SIZES)
def test_an_old_link_leads_to_the_newer_version(browser_page: Journey, staff, colleague,
                                                 make_deliverable, smtp_sink, size: str):
    j = browser_page
    d = make_deliverable(with_version=True)
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    first = workflow.deliver(staff, d, d.project.client.contacts[:1], Policy.PARALLEL,
                             future(7))
    db.session.commit()
    with reading():
        approver = first.approvers[0]
        old_link, email = f"/r/{issue_token(approver)}", approver.contact.email
        workflow.record_decision(approver, Outcome.REJECTED, "Wrong colours",
                                 seen_sha256=on_screen(approver))
        ids = (staff.id, colleague.id, d.id)

    client = j.actor(phone=SIZES[size])
    client.goto(old_link)
    expect(client.get_by_role("heading", name="The team is working on changes")).to_be_visible()
    _fits(client)
    j.shot(client, f"01-team-working-{size}")

    with reading():
        user, reviewer = db.session.get(User, ids[0]), db.session.get(User, ids[1])
        deliverable = db.session.get(Deliverable, ids[2])
        workflow.upload_version(user, deliverable, io.BytesIO(sample_pdf("v2")), "v2.pdf",
                                "New colours")
        workflow.submit_for_review(user, deliverable, reviewer)
        workflow.review_internally(reviewer, deliverable, approve=True)
        workflow.deliver(user, deliverable, deliverable.project.client.contacts[:1],
                         Policy.PARALLEL, future(7))
    invitations = len(wait_for_mail(smtp_sink, email, 2))

    client.reload()
    expect(client.get_by_role("heading", name="A newer version is waiting for you")).to_be_visible()
    _fits(client)
    j.shot(client, f"02-newer-version-waiting-{size}")
    client.get_by_role("button", name="Email me the link to version 2").click()
    expect(client.get_by_role("heading", name="Check your email")).to_be_visible()
    fresh = link_in(wait_for_mail(smtp_sink, email, invitations + 1)[-1])
    client.goto(fresh)
    expect(client.get_by_role("heading", level=1)).to_contain_text("version 2")
    client.goto(old_link)  # now this browser holds the newer link too: straight there
    client.get_by_role("link", name="Open version 2").click()
    expect(client.get_by_role("heading", level=1)).to_contain_text("version 2")


@pytest.mark.parametrize("size", SIZES)
def test_every_client_failure_is_a_page_of_theirs_with_a_way_on(
        browser_page: Journey, make_deliverable, size: str):
    j = browser_page
    d = make_deliverable(DeliverableState.DELIVERED)
    with reading():
        approver = d.open_request.approvers[0]
        token, public_id, title = issue_token(approver), approver.public_id, d.title
        d_id, staff_id = d.id, d.owner_id
    client = j.actor(phone=SIZES[size])
    for name, url, heading, way in (
            ("unknown-link", "/r/not-a-real-link", "Open the link from your email",
             "link in the email"),
            ("truncated-link", f"/r/{token[:-8]}", "Open the link from your email",
             "link in the email"),
            ("no-grant", f"/review/{public_id}", "Open the link from your email",
             "Email me a fresh link"),
            ("unknown-page", f"/review/{public_id}/nothing-here", "We could not find that page",
             "link in the email")):
        client.goto(url)
        expect(client.get_by_role("heading", name=heading)).to_be_visible()
        expect(client.locator("main")).to_contain_text(way)
        assert title not in client.content()  # the URL alone is not a secret
        _no_sign_in(client)
        _fits(client)
        j.shot(client, f"{name}-{size}")

    # The session ran out while the comment form was open: nothing saved, and the way on.
    client.goto(f"/r/{token}")
    client.get_by_label("Comment", exact=True).fill("Looks good to me")
    client.context.clear_cookies()
    client.get_by_role("button", name="Post comment").click()
    expect(client.locator("#htmx-errors")).to_contain_text("This page had expired")
    _fits(client)
    j.shot(client, f"session-expired-{size}")
    client.reload()
    expect(client.get_by_role("heading", name="Open the link from your email")).to_be_visible()
    _no_sign_in(client)

    with reading():
        run_out_link(db.session.get(Approver, approver.id))
    client.goto(f"/r/{token}")
    expect(client.get_by_role("heading", name="This link has expired")).to_be_visible()
    expect(client.get_by_role("button", name="Send me a new link")).to_be_visible()
    _no_sign_in(client)
    _fits(client)
    j.shot(client, f"expired-{size}")

    with reading():  # the team withdraws the request to rework it
        assert db.session.query(Comment).count() == 0
        deliverable = db.session.get(Deliverable, d_id)
        workflow.cancel_request(db.session.get(User, staff_id), deliverable.open_request)
    client.goto(f"/r/{token}")
    expect(client.get_by_role("heading", name="The team is working on changes")).to_be_visible()
    _no_sign_in(client)
    _fits(client)
    j.shot(client, f"withdrawn-{size}")
