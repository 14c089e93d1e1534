"""One deliverable from draft to delivered over HTTP, as two staff members would do it."""
from __future__ import annotations

import io
import re

from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.local_time import format_day
from portal.models import (
    Client,
    Deliverable,
    DeliverableState,
    OutboxMessage,
    OutboxStatus,
    Project,
    ReviewRequest,
)
from tests.conftest import future


def _location_id(response, pattern: str) -> int:
    match = re.search(pattern, response.headers["Location"])
    assert match, response.headers.get("Location")
    return int(match.group(1))


def test_draft_to_delivered_over_http(make_browser, staff, colleague):
    sam = make_browser()
    sam.login(staff.email)

    response = sam.post("/clients/new", MultiDict([
        ("name", "Acme Corp"),
        ("contact_name", "Jane Doe"), ("contact_email", "Jane@Acme.example"),
        ("contact_name", "John Roe"), ("contact_email", "john@acme.example"),
        ("contact_name", ""), ("contact_email", ""),
    ]))
    client_id = _location_id(response, r"/clients/(\d+)")
    client = db.session.get(Client, client_id)
    assert sorted(c.email for c in client.contacts) == ["jane@acme.example", "john@acme.example"]

    sam.post(f"/clients/{client_id}/projects",
             {"project_name": "Website relaunch", "owner_id": staff.id})
    project = db.session.scalar(select(Project).where(Project.client_id == client_id))
    assert project.owner == staff

    response = sam.post(f"/projects/{project.id}/deliverables/new", {
        "title": "Homepage v3", "description": "The new homepage",
        "due_date": future(20).isoformat()})
    deliverable_id = _location_id(response, r"/deliverables/(\d+)")

    response = sam.post(f"/deliverables/{deliverable_id}/versions", {
        "file": (io.BytesIO(sample_pdf("Homepage")), "homepage.pdf"),
        "what_changed": "First cut"}, content_type="multipart/form-data")
    assert response.status_code == 302
    page = sam.get(f"/deliverables/{deliverable_id}").get_data(as_text=True)
    assert "homepage.pdf" in page and "Submit for review" in page

    sam.post(f"/deliverables/{deliverable_id}/submit", {"reviewer_id": colleague.id})
    invite = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.to_addr == colleague.email))
    assert invite is not None and "Internal review requested" in invite.subject

    # The uploader is not offered the review; the colleague is.
    assert "Mark reviewed" not in sam.get(f"/deliverables/{deliverable_id}").get_data(as_text=True)
    cora = make_browser()
    cora.login(colleague.email)
    assert "Mark reviewed" in cora.get(f"/deliverables/{deliverable_id}").get_data(as_text=True)
    cora.post(f"/deliverables/{deliverable_id}/review", {"outcome": "approve", "note": "Good"})
    assert db.session.get(Deliverable, deliverable_id).state == DeliverableState.READY

    contacts = {c.name: c for c in client.contacts}
    jane, john = contacts["Jane Doe"], contacts["John Roe"]
    response = sam.post(f"/deliverables/{deliverable_id}/deliver", MultiDict([
        ("contact_id", john.id), (f"order_{john.id}", "2"),
        ("contact_id", jane.id), (f"order_{jane.id}", "1"),
        ("policy", "sequential"), ("due_date", future(7).isoformat()),
    ]))
    assert response.status_code == 302
    deliverable = db.session.get(Deliverable, deliverable_id)
    assert deliverable.state == DeliverableState.DELIVERED
    request = db.session.scalar(select(ReviewRequest))
    assert [a.contact.name for a in request.approvers] == ["Jane Doe", "John Roe"]

    emails = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.to_addr.in_(["jane@acme.example", "john@acme.example"]))).all()
    assert [m.to_addr for m in emails] == ["jane@acme.example"]  # sequential: Jane first
    # The agency's name (the default until an admin sets one), what, and by when.
    assert emails[0].subject == ("Signoff: please review Homepage v3 v1 by "
                                 f"{format_day(request.due_date)}")
    assert emails[0].status == OutboxStatus.SENT
    assert "http://portal.test/r/" in emails[0].body_text

    dashboard = sam.get("/").get_data(as_text=True)
    assert "Homepage v3" in dashboard and "Waiting for Jane Doe" in dashboard


def test_dashboard_filter_answers_htmx_with_the_rows_fragment(browser, make_deliverable, staff):
    make_deliverable(DeliverableState.DRAFT)
    make_deliverable(DeliverableState.READY)
    browser.login(staff.email)
    full = browser.get("/deliverables?state=ready")
    fragment = browser.get("/deliverables?state=ready", headers={"HX-Request": "true"})
    for response in (full, fragment):
        assert "HX-Request" in response.headers["Vary"]
    full_html, fragment_html = full.get_data(as_text=True), fragment.get_data(as_text=True)
    assert "<html" in full_html and "<html" not in fragment_html
    assert fragment_html.strip().startswith('<div id="deliverable-rows"')
    assert "ready" in fragment_html and ">draft<" not in fragment_html


def test_htmx_action_returns_the_deliverable_block(browser, make_deliverable, staff):
    d = make_deliverable(DeliverableState.DRAFT)
    browser.login(staff.email)
    response = browser.htmx_post(f"/deliverables/{d.id}/submit", {})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert html.strip().startswith('<div id="deliverable-main"') and "in review" in html
    # A refused move comes back as the same block with the message, status 409.
    response = browser.htmx_post(f"/deliverables/{d.id}/submit", {})
    assert response.status_code == 409
    assert "while it is in review" in response.get_data(as_text=True)


def test_errors_on_htmx_requests_land_in_the_error_area(browser, make_deliverable, staff):
    d = make_deliverable(DeliverableState.DRAFT)
    browser.login(staff.email)
    response = browser.client.post(f"/deliverables/{d.id}/submit",
                                   headers={"HX-Request": "true"})  # no CSRF token
    assert response.status_code == 400
    assert response.headers["HX-Retarget"] == "#htmx-errors"
    html = response.get_data(as_text=True)
    assert "<html" not in html and "Form expired" in html


def test_timeline_shows_events_and_emails_and_requested_changes_come_before_the_upload(
        browser, make_deliverable, staff):
    d = make_deliverable(DeliverableState.CHANGES_REQUESTED)
    browser.login(staff.email)
    page = browser.get(f"/deliverables/{d.id}").get_data(as_text=True)
    timeline = page[page.index("<h2>Timeline</h2>"):]
    for entry in ("Client requested changes", "Delivered to the client",
                  "Email: Signoff: please review Homepage v3 v1 by "):
        assert entry in timeline
    # What the client asked, and classifying it (the next step), then the upload form.
    asked = page[page.index('id="changes-requested-heading"'):page.index("Upload a new version")]
    assert "Wrong colours" in asked and "within the original scope, or a change request?" in asked
    start = page.index("Upload a new version")
    upload = page[start:page.index("</form>", start)]
    assert 'hx-encoding="multipart/form-data"' in upload and "<progress" in upload


def test_client_page_shows_the_history_of_decisions(browser, make_deliverable, staff):
    rejected = make_deliverable(DeliverableState.CHANGES_REQUESTED)
    client = rejected.project.client
    browser.login(staff.email)
    page = browser.get(f"/clients/{client.id}").get_data(as_text=True)
    history = page[page.index("History of decisions"):]
    assert "Homepage v3" in history and "Wrong colours" in history
    assert "changes requested" in history


def test_back_button_history_restore_gets_the_whole_page(browser, make_deliverable, staff):
    make_deliverable(DeliverableState.READY)
    browser.login(staff.email)
    response = browser.get("/deliverables?state=ready",
                           headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    html = response.get_data(as_text=True)
    assert "<html" in html and 'class="filters"' in html
