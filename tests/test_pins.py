"""Comments pinned to the spot, in the viewer both the client and staff use.

The document is a real three-page PDF made with WeasyPrint; its pages are rendered by the
job after the upload (the test's commit waits for the background worker).
"""
from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from portal import workflow
from portal.certificates import create_development_key
from portal.extensions import db
from portal.models import Comment, DeliverableState, Policy
from portal.workflow.links import issue_token
from tests.conftest import future, stored_path
from tests.test_renders import three_page_pdf


@pytest.fixture
def delivered(make_deliverable, staff, colleague):
    d = make_deliverable(DeliverableState.DRAFT, with_version=False)
    workflow.upload_version(staff, d, io.BytesIO(three_page_pdf()), "brochure.pdf", "First cut")
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    workflow.deliver(staff, d, d.project.client.contacts[:1], Policy.PARALLEL, future(7))
    db.session.commit()
    return d


@pytest.fixture
def client_tab(browser, delivered):
    approver = delivered.open_request.approvers[0]
    assert browser.get(f"/r/{issue_token(approver)}").status_code == 303
    assert browser.get(browser.review).status_code == 200  # the page its forms belong to
    return browser


@pytest.fixture
def sam(make_browser, staff):
    sam = make_browser()
    sam.login(staff.email)
    return sam


def _markers(html: str) -> list[str]:
    return re.findall(r'aria-label="Comment #(\d+)"', html)


def test_the_client_sees_every_page_and_pins_a_comment_on_page_2(client_tab, delivered, sam):
    page = client_tab.get(client_tab.review).get_data(as_text=True)
    assert all(f'id="page-{n}"' in page for n in (1, 2, 3)) and 'id="page-4"' not in page
    assert "<iframe" not in page  # no plug-in frame: pages are images any phone shows
    assert re.findall(r'<option value="(\d)"', page) == ["1", "2", "3"]

    posted = client_tab.post(f"{client_tab.review}/comments",
                             {"body": "Make the headline bigger", "page": "2",
                              "x": "0.5", "y": "0.25"})
    assert posted.status_code == 303
    comment = db.session.scalars(select(Comment)).one()
    assert (comment.page, comment.x, comment.y, comment.w, comment.h) == (2, 0.5, 0.25, None,
                                                                          None)
    assert comment.version_id == delivered.current_version.id

    page = client_tab.get(client_tab.review).get_data(as_text=True)
    assert _markers(page) == ["1"] and "p. 2 · #1" in page
    # The marker sits on page 2's layer, at the spot: x 500 of 1000, y a quarter down.
    layer = page[page.index('id="page-2"'):page.index('id="page-3"')]
    assert re.search(r'<circle cx="500" cy="\d+" r="30"/>', layer)

    staff_page = sam.get(f"/deliverables/{delivered.id}").get_data(as_text=True)
    assert "p. 2 · #1" in staff_page and _markers(staff_page) == ["1"]


def test_a_box_pin_and_a_page_pin_without_javascript(client_tab):
    assert client_tab.post(f"{client_tab.review}/comments", {
        "body": "This whole block", "page": "1", "x": "0.1", "y": "0.2", "w": "0.5",
        "h": "0.3"}).status_code == 303
    assert client_tab.post(f"{client_tab.review}/comments",
                           {"body": "Page three in general", "page": "3"}).status_code == 303
    rows = [(c.page, c.x, c.y, c.w, c.h) for c in
            db.session.scalars(select(Comment).order_by(Comment.id))]
    assert rows == [(1, 0.1, 0.2, 0.5, 0.3), (3, None, None, None, None)]
    page = client_tab.get(client_tab.review).get_data(as_text=True)
    assert '<rect class="area" x="100"' in page and "p. 3 · #2" in page


@pytest.mark.parametrize(("form", "message"), [
    ({"page": "4", "x": "0.5", "y": "0.5"}, "there is no page 4"),
    ({"page": "two"}, "Choose a page from the list."),
    ({"page": "²"}, "Choose a page from the list."),
    ({"page": "9" * 5000}, "Choose a page from the list."),
    ({"page": "1", "x": "1.5", "y": "0.5"}, "The pin must be on the page."),
    ({"page": "1", "x": "nan", "y": "0.5"}, "The pin must be on the page."),
    ({"page": "1", "x": "0.8", "y": "0.5", "w": "0.5", "h": "0.1"}, "The box must be on the page."),
], ids=["no-such-page", "not-a-number", "superscript-digit", "huge", "off-the-page", "nan",
        "box-off-the-page"])
def test_a_pin_off_the_document_is_refused_and_the_comment_kept(client_tab, form, message):
    response = client_tab.post(f"{client_tab.review}/comments", {"body": "Keep me", **form})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html and "Keep me" in html
    assert db.session.scalars(select(Comment)).all() == []


def test_htmx_posting_a_pin_adds_the_comment_and_its_marker_on_its_page(client_tab):
    # The answer is what the post adds (issue 14): the new comment, and out of band its
    # marker drawn on page 2's layer, not the whole thread and viewer again.
    client_tab.get(client_tab.review)
    response = client_tab.htmx_post(f"{client_tab.review}/comments",
                                    {"body": "Here", "page": "2", "x": "0.3", "y": "0.3"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<li class="comment')
    assert '<section id="viewer"' not in html and '<section id="comments"' not in html
    assert 'hx-swap-oob="beforeend:#page-2 svg.layer"' in html
    assert _markers(html) == ["1"]


def test_internal_pins_stay_with_staff(client_tab, delivered, sam):
    request_id = delivered.open_request.id
    assert sam.post(f"/requests/{request_id}/comments", {
        "body": "Legal must check this", "internal": "1", "page": "3", "x": "0.2",
        "y": "0.9"}).status_code == 302
    assert sam.post(f"/requests/{request_id}/comments", {
        "body": "We will fix it", "page": "1", "x": "0.4", "y": "0.4"}).status_code == 302
    staff_page = sam.get(f"/deliverables/{delivered.id}").get_data(as_text=True)
    assert _markers(staff_page) == ["2", "1"] or sorted(_markers(staff_page)) == ["1", "2"]
    assert 'class="marker internal"' in staff_page
    client_page = client_tab.get(client_tab.review).get_data(as_text=True)
    assert "Legal must check this" not in client_page and "marker internal" not in client_page
    assert _markers(client_page) == ["1"] and "We will fix it" in client_page


def test_the_viewer_placeholder_stops_polling_once_pages_exist(client_tab):
    part = client_tab.get(f"{client_tab.review}?part=viewer", headers={"HX-Request": "true"})
    assert part.status_code == 286  # htmx: stop polling
    html = part.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="viewer"') and 'id="page-3"' in html
    assert "HX-Request" in part.headers["Vary"]


@pytest.fixture(scope="session")
def seal_key(tmp_path_factory: pytest.TempPathFactory):
    return create_development_key(tmp_path_factory.mktemp("pins-seal"), "Pins seal")


@pytest.fixture
def sealing(app_config, seal_key):
    key, cert = seal_key
    app_config.update(SIGNING_KEY=str(key), SIGNING_CERT=str(cert), SIGNING_PKCS12="")


def test_the_certificate_lists_pinned_comments_with_their_page(sealing, app, client_tab,
                                                               delivered, sam):
    client_tab.post(f"{client_tab.review}/comments",
                    {"body": "Bigger headline", "page": "2", "x": "0.3", "y": "0.1"})
    sam.post(f"/requests/{delivered.open_request.id}/comments",
             {"body": "Secret pinned note", "internal": "1", "page": "3"})
    assert client_tab.post(f"{client_tab.review}/decision",
                           {"choice": "approve", "confirm": "1"}).status_code == 303
    certificate = delivered.requests[0].certificate
    assert certificate is not None
    pdf = PdfReader(io.BytesIO(stored_path(app, certificate.storage_key).read_bytes()))
    flat = re.sub(r"\s+", "", "".join(p.extract_text() or "" for p in pdf.pages))
    assert "p.2" in flat and "Biggerheadline" in flat
    assert "Secretpinnednote" not in flat


def test_the_staff_viewer_placeholder_answers_with_the_viewer_alone(client_tab, delivered, sam,
                                                                    count_queries):
    client_tab.post(f"{client_tab.review}/comments",
                    {"body": "Here", "page": "2", "x": "0.5", "y": "0.5"})
    with count_queries() as counter:
        part = sam.get(f"/deliverables/{delivered.id}?part=viewer",
                       headers={"HX-Request": "true"})
    assert part.status_code == 286  # the pages exist: htmx stops asking
    html = part.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="viewer"') and "Timeline" not in html
    assert _markers(html) == ["1"]
    full = sam.get(f"/deliverables/{delivered.id}", headers={"HX-Request": "true"})
    with count_queries() as whole:
        sam.get(f"/deliverables/{delivered.id}", headers={"HX-Request": "true"})
    assert full.status_code == 200 and counter.count < whole.count
