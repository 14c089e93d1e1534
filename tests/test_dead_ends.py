"""No dead ends: staff edit a deliverable's details, start a deliverable from the dashboard,
and every way a client's link can fail is a page in the client's layout with a way on."""
from __future__ import annotations

import io
import json
import re

import pytest
from sqlalchemy import func, select

from portal import workflow
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import (
    Approver,
    AuditEvent,
    Deliverable,
    DeliverableState,
    OutboxMessage,
    Outcome,
    Policy,
    Project,
    Role,
)
from portal.workflow.invitations import resend_link, revoke_link
from portal.workflow.links import issue_token
from tests.conftest import future, on_screen, run_out_link

S = DeliverableState
LINK = re.compile(r"http://portal\.test/r/([A-Za-z0-9_\-.]+)")


def _staff(make_browser, user):
    browser = make_browser()
    browser.login(user.email)
    return browser


def _edits(deliverable_id: int) -> list[dict]:
    return [json.loads(d) for d in db.session.scalars(
        select(AuditEvent.detail).where(AuditEvent.verb == "deliverable.edited",
                                        AuditEvent.deliverable_id == deliverable_id)
        .order_by(AuditEvent.seq))]


def _text(response) -> str:
    return response.get_data(as_text=True)


# --- editing a deliverable's details --------------------------------------------------------

def test_a_deliverable_made_without_a_description_gets_one_and_can_then_be_delivered(
        make_browser, make_project, staff, colleague):
    project = make_project()
    d = workflow.create_deliverable(staff, project, "Logo", "", None)
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf("Logo")), "logo.pdf", "")
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    db.session.commit()
    sam = _staff(make_browser, staff)
    contact = project.client.contacts[0]
    deliver = {"contact_id": str(contact.id), "policy": "parallel",
               "due_date": future(7).isoformat()}

    refused = sam.post(f"/deliverables/{d.id}/deliver", deliver)
    assert refused.status_code == 409 and "a description of the deliverable" in _text(refused)
    page = _text(sam.get(f"/deliverables/{d.id}"))
    assert f'href="/deliverables/{d.id}/edit">Edit details</a>' in page

    form = _text(sam.get(f"/deliverables/{d.id}/edit"))
    assert 'value="Logo"' in form and "Save details" in form
    saved = sam.post(f"/deliverables/{d.id}/edit", {
        "title": "Logo, final", "description": "The logo in three colours.",
        "due_date": future(10).isoformat()})
    assert saved.status_code == 302
    assert "Saved: title, description, due date." in _text(sam.get(saved.headers["Location"]))
    db.session.refresh(d)
    assert (d.title, d.description, d.due_date) == ("Logo, final", "The logo in three colours.",
                                                    future(10))
    assert _edits(d.id) == [{"changes": {
        "title": ["Logo", "Logo, final"], "description": ["", "The logo in three colours."],
        "due_date": [None, future(10).isoformat()]}}]

    assert sam.post(f"/deliverables/{d.id}/deliver", deliver).status_code == 302
    db.session.refresh(d)
    assert d.state == S.DELIVERED


def test_edit_refuses_bad_details_with_clear_words_and_records_nothing(
        make_browser, make_deliverable, staff):
    d = make_deliverable()
    sam = _staff(make_browser, staff)
    url = f"/deliverables/{d.id}/edit"
    base = {"title": d.title, "description": d.description, "due_date": d.due_date.isoformat()}
    answers = {
        "empty title": sam.post(url, {**base, "title": "  "}),
        "title with a line break": sam.post(url, {**base, "title": "A\nB"}),
        "past due date": sam.post(url, {**base, "due_date": "2020-01-01"}),
        "not a date": sam.post(url, {**base, "due_date": "next week"}),
        "long description": sam.post(url, {**base, "description": "x" * 5001}),
    }
    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 422)
    assert "The title is required." in _text(answers["empty title"])
    assert "2020-01-01 is in the past" in _text(answers["past due date"])
    assert "must be a date like" in _text(answers["not a date"])
    # the form comes back with what was typed
    assert 'value="2020-01-01"' in _text(answers["past due date"])
    unchanged = sam.post(url, base)
    assert unchanged.status_code == 302
    assert "Nothing changed." in _text(sam.get(unchanged.headers["Location"]))
    assert _edits(d.id) == []


def test_while_the_client_decides_the_title_is_fixed_and_the_due_date_moves(
        make_browser, make_deliverable, staff, make_user):
    d = make_deliverable(S.DELIVERED)
    sam = _staff(make_browser, staff)
    url = f"/deliverables/{d.id}/edit"
    form = _text(sam.get(url))
    assert "is with the client" in form and "readonly" in form
    renamed = sam.post(url, {"title": "Sneaky rename", "description": d.description,
                             "due_date": d.due_date.isoformat()})
    assert renamed.status_code == 409 and "Cancel the request to change them" in _text(renamed)
    moved = sam.post(url, {"title": d.title, "description": d.description,
                           "due_date": future(30).isoformat()})
    assert moved.status_code == 302
    db.session.refresh(d)
    assert d.title == "Homepage v3" and d.due_date == future(30)
    assert [set(e["changes"]) for e in _edits(d.id)] == [{"due_date"}]

    fiona = _staff(make_browser, make_user(Role.FINANCE))
    assert fiona.get(url).status_code == 403
    assert fiona.post(url, {"title": "x", "description": "", "due_date": ""}).status_code == 403
    assert "Edit details" not in _text(fiona.get(f"/deliverables/{d.id}"))


# --- a new deliverable from the dashboard -----------------------------------------------------

def test_new_deliverable_from_the_dashboard_chooses_client_then_project(
        make_browser, make_client, make_project, staff):
    sam = _staff(make_browser, staff)
    empty = _text(sam.get("/deliverables/new"))
    assert "There are no clients yet" in empty and 'href="/clients/new"' in empty

    acme, bare = make_client("Acme"), make_client("Bare Co")
    web = make_project(acme)
    dashboard = _text(sam.get("/"))
    assert 'href="/deliverables/new">New deliverable</a>' in dashboard

    step1 = _text(sam.get("/deliverables/new"))
    assert "Choose a client" in step1 and ">Acme</option>" in step1 and "Title" not in step1
    no_projects = _text(sam.get(f"/deliverables/new?client={bare.id}"))
    assert "Bare Co has no projects yet" in no_projects
    assert f'href="/clients/{bare.id}#project_name"' in no_projects
    step2 = _text(sam.get(f"/deliverables/new?client={acme.id}"))
    assert f'<option value="{web.id}"' in step2 and 'name="title"' in step2

    missing = sam.post("/deliverables/new", {"client": str(acme.id), "project_id": "",
                                             "title": "Brochure"})
    assert missing.status_code == 422 and "Choose the project" in _text(missing)
    assert 'value="Brochure"' in _text(missing)
    made = sam.post("/deliverables/new", {"client": str(acme.id), "project_id": str(web.id),
                                          "title": "Brochure", "description": "Eight pages",
                                          "due_date": future(20).isoformat()})
    assert made.status_code == 302
    d = db.session.scalars(select(Deliverable).where(Deliverable.title == "Brochure")).one()
    assert made.headers["Location"].endswith(f"/deliverables/{d.id}")
    assert (d.project_id, d.description, d.owner_id) == (web.id, "Eight pages", staff.id)
    assert db.session.get(Project, web.id).deliverables == [d]


# --- every way a client's link can fail -------------------------------------------------------

def _client_page(response, status: int) -> str:
    """A client's error: their layout, the status, no staff sign-in, and a way on."""
    html = _text(response)
    assert response.status_code == status, html[:500]
    assert 'class="topbar client-bar' in html, html[:500]
    assert "/login" not in html and "Sign in" not in html
    assert "Not Found" not in html and "Bad Request" not in html  # werkzeug's words
    assert re.search(r'<a class="button" href="/review/|<form method="post"|email', html)
    return html


def _link(browser, approver) -> None:
    assert browser.get(f"/r/{issue_token(approver)}").status_code == 303


def _next_round(d, staff, colleague, contacts, name: str = "v2.pdf"):
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf(name)), name, "Changes")
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    request = workflow.deliver(staff, d, contacts, Policy.PARALLEL, future(7))
    db.session.commit()
    return request


def test_unknown_truncated_expired_and_grantless_links_each_say_what_to_do(
        make_browser, make_deliverable):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    token = issue_token(approver)
    html = _client_page(make_browser().get("/r/not-a-token"), 404)
    assert "link in the email" in html
    _client_page(make_browser().get(f"/r/{token[:-6]}"), 404)
    no_grant = _client_page(make_browser().get(f"/review/{approver.public_id}"), 403)
    assert "Email me a fresh link" in no_grant and d.title not in no_grant
    unknown = _client_page(make_browser().get("/review/nobody-at-all"), 404)
    assert d.title not in unknown

    run_out_link(approver)
    expired = make_browser()
    _link(expired, approver)
    html = _client_page(expired.get(expired.review), 410)
    assert "This link has expired" in html and "Send me a new link" in html


def test_framework_errors_on_client_urls_are_client_pages_with_a_way_back(
        app, make_browser, make_deliverable):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    browser = make_browser()
    _link(browser, approver)
    review = f"/review/{approver.public_id}"

    html = _client_page(browser.get(f"{review}/no-such-page"), 404)
    assert f'href="{review}">Back to your review page' in html
    html = _client_page(browser.get(f"{review}/files/999999"), 404)
    assert d.title not in html
    # The session ran out while the form was open: the CSRF check fails, nothing is saved.
    stale = browser.post(f"{review}/comments", {"body": "late", "csrf_token": "stale"})
    html = _client_page(stale, 400)
    assert "nothing was saved" in html and f'href="{review}"' in html
    assert stale.headers["Cache-Control"] == "no-store"


@pytest.fixture
def tight_client_limit(app_config):
    app_config["CLIENT_RATE_LIMIT"] = "2 per minute"


def test_too_many_tries_is_a_client_page(tight_client_limit, make_browser, make_deliverable):
    d = make_deliverable(S.DELIVERED)
    browser = make_browser()
    token = issue_token(d.open_request.approvers[0])
    answers = [browser.get(f"/r/{token}") for _ in range(3)]
    assert [a.status_code for a in answers] == [303, 303, 429]
    html = _client_page(answers[-1], 429)
    assert "wait a minute" in html and "per 1 minute" not in html


@pytest.fixture
def crash_on_a_client_url(app_config):
    app_config["PROPAGATE_EXCEPTIONS"] = False  # a crash is a 500 page, as a client sees it


def test_a_crash_on_a_client_url_is_a_client_page(crash_on_a_client_url, app, make_browser,
                                                  make_deliverable):
    def crash(public_id: str):
        raise RuntimeError("boom")
    # On the client blueprint's endpoint namespace, as any of its views would be.
    app.add_url_rule("/review/<public_id>/crash", "client.crash", crash)
    approver = make_deliverable(S.DELIVERED).open_request.approvers[0]
    html = _client_page(make_browser().get(f"/review/{approver.public_id}/crash"), 500)
    assert "Something went wrong on our side" in html and "boom" not in html
    assert f'href="/review/{approver.public_id}">Try your review page again' in html


def test_revoked_resent_and_cancelled_links_each_point_the_right_way(
        make_browser, make_deliverable, staff):
    d = make_deliverable(S.DELIVERED, approvers=2)
    first, second = d.open_request.approvers
    old_first, old_second = issue_token(first), issue_token(second)
    revoke_link(staff, first)
    resend_link(staff, second)
    db.session.commit()
    revoked = _client_page(make_browser().get(f"/r/{old_first}"), 410)
    assert "This link no longer works" in revoked and "Email me" not in revoked
    resent = _client_page(make_browser().get(f"/r/{old_second}"), 410)
    assert "Email me a fresh link" in resent
    assert f'action="/review/{second.public_id}/renew"' in resent

    newest_link = issue_token(second)  # what the resend emailed
    workflow.cancel_request(staff, d.open_request)
    db.session.commit()
    cancelled = _client_page(make_browser().get(f"/r/{newest_link}"), 410)
    assert "The team is working on changes" in cancelled
    assert "This link no longer works" in cancelled


def test_an_old_version_says_a_newer_one_is_waiting_and_the_way_there_works(
        make_browser, make_deliverable, staff, colleague):
    d = make_deliverable(S.DELIVERED, approvers=2)
    jane, john = d.open_request.approvers
    jane_browser, john_browser = make_browser(), make_browser()
    _link(jane_browser, jane)
    _link(john_browser, john)
    workflow.record_decision(jane, Outcome.REJECTED, "Wrong colours",
                             seen_sha256=on_screen(jane))
    db.session.commit()
    # Changes requested, nothing new yet: both old pages say the team is on it.
    for browser in (jane_browser, john_browser):
        page = _text(browser.get(browser.review))
        assert "The team is working on changes" in page

    newer = _next_round(d, staff, colleague, [jane.contact]).approvers[0]
    jane_page = _text(jane_browser.get(jane_browser.review))
    assert "A newer version is waiting for you" in jane_page
    assert "Version 2 of Homepage v3 has replaced" in jane_page
    assert f'action="/review/{newer.public_id}/renew"' in jane_page  # no grant for it here
    john_page = _text(john_browser.get(john_browser.review))
    assert "The team is working on changes" in john_page and "Version 2" not in john_page

    sent = jane_browser.post(f"/review/{newer.public_id}/renew")
    assert sent.status_code == 200 and "Check your email" in _text(sent)
    message = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.to_addr == jane.contact.email).order_by(OutboxMessage.id.desc()).limit(1))
    fresh = LINK.search(message.body_text).group(1)
    assert jane_browser.get(f"/r/{fresh}").status_code == 303
    assert jane_browser.review == f"/review/{newer.public_id}"
    # With the newer link opened here too, the old page links straight to it.
    again = _text(jane_browser.get(f"/review/{jane.public_id}"))
    assert f'<a class="button" href="/review/{newer.public_id}">Open version 2</a>' in again


def test_a_cancelled_and_redelivered_link_leads_to_the_newer_version(
        make_browser, make_deliverable, staff, colleague):
    d = make_deliverable(S.DELIVERED)
    old = d.open_request.approvers[0]
    token = issue_token(old)
    workflow.cancel_request(staff, d.open_request)
    newer = _next_round(d, staff, colleague, [old.contact]).approvers[0]
    browser = make_browser()
    html = _client_page(browser.get(f"/r/{token}"), 410)
    assert "A newer version is waiting for you" in html
    assert f'action="/review/{newer.public_id}/renew"' in html
    _link(browser, newer)
    html = _client_page(browser.get(f"/r/{token}"), 410)
    assert f'<a class="button" href="/review/{newer.public_id}">Open version 2</a>' in html
    assert db.session.scalar(select(func.count()).select_from(Approver)) == 2


def test_an_expired_link_to_a_closed_request_offers_no_link_that_would_fail(
        make_browser, make_deliverable, staff, colleague):
    approved = make_deliverable(S.APPROVED).requests[0].approvers[0]
    run_out_link(approved)
    browser = make_browser()
    _link(browser, approved)
    html = _client_page(browser.get(browser.review), 410)
    assert "was approved" in html and "Send me a new link" not in html

    d = make_deliverable(S.DELIVERED)
    old = d.open_request.approvers[0]
    workflow.record_decision(old, Outcome.REJECTED, "Wrong colours", seen_sha256=on_screen(old))
    newer = _next_round(d, staff, colleague, [old.contact]).approvers[0]
    run_out_link(old)
    browser = make_browser()
    _link(browser, old)
    html = _client_page(browser.get(browser.review), 410)
    assert "A newer version is waiting for you" in html and "Send me a new link" not in html
    assert f'action="/review/{newer.public_id}/renew"' in html


def test_only_staff_may_start_or_edit_a_deliverable(make_browser, make_user, make_deliverable):
    d = make_deliverable()
    fiona = _staff(make_browser, make_user(Role.FINANCE))
    anonymous = make_browser()
    form = {"client": "1", "project_id": str(d.project_id), "title": "Sneaky"}
    assert fiona.get("/deliverables/new").status_code == 403
    assert fiona.post("/deliverables/new", form).status_code == 403
    home = fiona.get("/", follow_redirects=True)  # finance's home is the approved list
    assert home.status_code == 200 and "New deliverable" not in _text(home)
    for url in ("/deliverables/new", f"/deliverables/{d.id}/edit"):
        response = anonymous.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(Deliverable)) == 1
