"""End-to-end journeys in Chromium: what each person sees, and what the database holds.

Each journey starts from its own data. Journey 1 builds everything through the UI; the
client, finance, rejection and link journeys start from a deliverable the real workflow
delivered (the same functions the staff pages call), so each can fail on its own.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

import jobs.certificates
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    AuditEvent,
    Certificate,
    Comment,
    Deliverable,
    DeliverableState,
    Outcome,
    Policy,
    RequestStatus,
    ReviewRequest,
    today_utc,
    utcnow,
)
from portal.notifications import background
from portal.workflow import links
from portal.workflow.links import LinkState
from tests.e2e.browser_api import Page, expect
from tests.e2e.conftest import (
    LINK,
    Journey,
    Person,
    link_in,
    off_the_browser_thread,
    reading,
    text_of,
    wait_for_mail,
)

pytestmark = pytest.mark.e2e

S = DeliverableState
TITLE = "Homepage v3"
CLIENT = "Acme Corp"
CONTACTS = [("Jane Doe", "jane@acme.example"), ("John Roe", "john@acme.example")]


@dataclass(frozen=True)
class Delivered:
    deliverable_id: int
    request_id: int
    approver_ids: list[int]


def _deliver(make_client, make_project, make_deliverable, state: DeliverableState,
             policy: Policy = Policy.PARALLEL, approvers: int = 2) -> Delivered:
    """Acme Corp with Jane and John, driven by the real workflow up to `state`."""
    client = make_client(CLIENT, contacts=2)
    for contact, (name, email) in zip(client.contacts, CONTACTS, strict=True):
        contact.name, contact.email = name, email
    db.session.commit()
    d = make_deliverable(state, project=make_project(client), policy=policy,
                         approvers=approvers)
    with reading():
        request = d.requests[-1] if d.requests else None
        return Delivered(d.id, request.id if request else 0,
                         [a.id for a in request.approvers] if request else [])


def _review_link(sink, email: str, nth: int = -1) -> str:
    """The nth email to this address that carries a review link (receipts carry none)."""
    wanted, deadline = (1 if nth == -1 else nth + 1), time.monotonic() + 15
    while True:
        carrying = [m for m in sink.to(email) if LINK.search(text_of(m))]
        if len(carrying) >= wanted or time.monotonic() > deadline:
            return link_in(carrying[nth] if carrying else wait_for_mail(sink, email)[nth])
        time.sleep(0.05)


def _panel(page: Page):
    return page.locator("#decision-panel")


def _status_line(page: Page):
    return page.locator("#decision-panel .status")


def _pdf_viewer_loaded(page: Page) -> None:
    """The viewer shows the document's pages as images (rendered by the job after the
    upload; the placeholder polls until they are there), each one actually decoded."""
    first = page.locator("#viewer .page img").first
    expect(first).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#viewer .page img')].slice(0, 1)"
        ".every(img => img.complete && img.naturalWidth > 0)")


def _staff_badge(page: Page):
    return page.locator("#deliverable-main .page-head .badge")


# --- 1. staff prepare, a colleague reviews, staff deliver ---------------------------------

def test_staff_prepares_colleague_reviews_and_delivers_in_sequence(
        browser_page: Journey, staff_a: Person, colleague_b: Person, smtp_sink, tmp_path):
    j = browser_page
    pdf = tmp_path / "homepage.pdf"
    pdf.write_bytes(sample_pdf(TITLE))
    due = today_utc() + timedelta(days=21)

    a = j.actor()
    j.sign_in(a, staff_a.email)
    expect(a.get_by_role("heading", name="What needs attention")).to_be_visible()
    j.shot(a, "01-dashboard")

    a.get_by_role("link", name="New deliverable").click()
    # No client yet: the new-deliverable form starts with one.
    a.get_by_role("link", name="Add a client").click()
    a.get_by_label("Client name").fill(CLIENT)
    names, emails = a.locator("input[name=contact_name]"), a.locator("input[name=contact_email]")
    for i, (name, email) in enumerate(CONTACTS):
        names.nth(i).fill(name)
        emails.nth(i).fill(email)
    j.shot(a, "02-new-client")
    a.get_by_role("button", name="Create client").click()
    expect(a.get_by_text(f"Client {CLIENT} created.")).to_be_visible()
    for name, email in CONTACTS:
        expect(a.locator("ul.contacts")).to_contain_text(f"{name} {email}")

    a.get_by_label("Project name").fill("Website relaunch")
    expect(a.get_by_label("Account manager")).to_have_value(str(staff_a.id))
    a.get_by_role("button", name="Add project").click()
    expect(a.get_by_text("Project Website relaunch created.")).to_be_visible()
    j.shot(a, "03-client-with-project")

    a.get_by_role("link", name="New deliverable").click()
    a.get_by_label("Title").fill(TITLE)
    a.get_by_label("Description").fill("The new homepage, desktop and mobile.")
    a.get_by_label("Due date").fill(due.isoformat())
    a.get_by_role("button", name="Create deliverable").click()
    expect(a.get_by_text("Deliverable created. Upload its first version next.")).to_be_visible()
    expect(_staff_badge(a)).to_have_text("draft")
    deliverable_id = int(re.search(r"/deliverables/(\d+)$", a.url).group(1))

    a.get_by_label("File", exact=True).set_input_files(str(pdf))
    a.get_by_label("What changed").fill("First cut")
    a.get_by_role("button", name="Upload version").click()
    expect(a.get_by_text("New version uploaded.")).to_be_visible()
    expect(a.get_by_role("link", name="homepage.pdf", exact=True)).to_be_visible()
    expect(a.get_by_role("heading", name="Submit version 1 for internal review")).to_be_visible()
    a.get_by_label("Reviewer").select_option(label=colleague_b.name)
    j.shot(a, "04-uploaded-choose-reviewer")
    a.get_by_role("button", name="Submit for review").click()
    expect(a.get_by_text("Submitted for internal review.")).to_be_visible()
    expect(_staff_badge(a)).to_have_text("in review")
    expect(a.get_by_text(f"You uploaded this version, so {colleague_b.name} reviews it.")
           ).to_be_visible()
    expect(a.get_by_role("button", name="Mark reviewed")).to_have_count(0)

    with reading():
        d = db.session.get(Deliverable, deliverable_id)
        assert d.state == S.IN_REVIEW and d.reviewer_id == colleague_b.id
        assert d.owner_id == staff_a.id and d.due_date == due
        assert d.project.name == "Website relaunch" and d.project.client.name == CLIENT
        assert sorted(c.email for c in d.project.client.contacts) == sorted(
            e for _, e in CONTACTS)
        v = d.current_version
        assert (v.number, v.file_name, v.media_type) == (1, "homepage.pdf", "application/pdf")
        assert v.sha256 == hashlib.sha256(pdf.read_bytes()).hexdigest()
        assert v.uploaded_by_id == staff_a.id and v.what_changed == "First cut"
    asked = wait_for_mail(smtp_sink, colleague_b.email)
    assert asked[0]["Subject"] == f"Internal review requested: {TITLE} (version 1)"

    b = j.actor()
    j.sign_in(b, colleague_b.email)
    mine = b.locator("#section-my_reviews")
    expect(mine.get_by_role("heading")).to_contain_text("Waiting for an internal review by you")
    expect(mine.locator(".count")).to_have_text("1")
    expect(mine.get_by_role("link", name=TITLE)).to_be_visible()
    j.shot(b, "05-colleague-dashboard")
    mine.get_by_role("link", name=TITLE).click()
    expect(_staff_badge(b)).to_have_text("in review")
    b.get_by_role("button", name="Mark reviewed").click()
    expect(b.get_by_text("Marked as reviewed.")).to_be_visible()
    expect(_staff_badge(b)).to_have_text("ready")
    expect(b.get_by_text(f"Internal review: approved by {colleague_b.name}")).to_be_visible()
    j.shot(b, "06-colleague-reviewed")

    a.reload()
    expect(a.get_by_role("heading", name=f"Deliver version 1 to {CLIENT}")).to_be_visible()
    approvers = a.get_by_role("group", name="Approvers")
    for order, (name, _) in enumerate(CONTACTS, start=1):
        row = approvers.locator(".row").filter(has_text=name)
        row.get_by_role("checkbox").check()
        row.get_by_role("spinbutton").fill(str(order))
    a.get_by_label("One after another (sequential)").check()
    expect(a.get_by_label("Decision due by")).to_have_value(due.isoformat())
    j.shot(a, "07-deliver-form")
    a.get_by_role("button", name="Deliver", exact=True).click()
    expect(a.get_by_text("Delivered. The approvers have been emailed.")).to_be_visible()
    expect(_staff_badge(a)).to_have_text("delivered")
    expect(a.get_by_role("heading", name="Out with the client")).to_be_visible()
    rows = a.locator("ul.approvers > li")
    expect(rows.nth(0)).to_contain_text(f"1. {CONTACTS[0][0]}")
    expect(rows.nth(0)).to_contain_text("invited")
    expect(rows.nth(1)).to_contain_text(f"2. {CONTACTS[1][0]}")
    expect(rows.nth(1)).to_contain_text("queued")
    j.shot(a, "08-delivered")

    with reading():
        d = db.session.get(Deliverable, deliverable_id)
        assert d.state == S.DELIVERED
        request = d.open_request
        assert request.policy == Policy.SEQUENTIAL and request.status == RequestStatus.OPEN
        assert request.sent_by_id == staff_a.id and request.due_date == due
        assert [(a_.position, a_.contact.email, a_.status) for a_ in request.approvers] == [
            (1, CONTACTS[0][1], ApproverStatus.INVITED),
            (2, CONTACTS[1][1], ApproverStatus.QUEUED)]
    invite = wait_for_mail(smtp_sink, CONTACTS[0][1])
    assert invite[0]["Subject"].startswith(f"Signoff: please review {TITLE} v1 by ")
    assert "/r/" in link_in(invite[0])
    assert smtp_sink.to(CONTACTS[1][1]) == [], "sequential: the second contact waits"


# --- 2. the clients approve in turn, the first with conditions -----------------------------

def test_clients_approve_in_turn_first_with_conditions(
        app, browser_page: Journey, staff_a: Person, make_client, make_project,
        make_deliverable, smtp_sink):
    j = browser_page
    setup = _deliver(make_client, make_project, make_deliverable, S.DELIVERED,
                     policy=Policy.SEQUENTIAL, approvers=2)
    (jane, jane_email), (john, john_email) = CONTACTS
    assert smtp_sink.to(john_email) == []

    c1 = j.actor(phone=True)
    c1.goto(_review_link(smtp_sink, jane_email))
    expect(c1).to_have_url(re.compile(r"/review/[\w-]+$"))  # the token left the address bar
    expect(c1.get_by_role("heading", level=1)).to_contain_text(TITLE)
    expect(c1.get_by_text(f"Review for {CLIENT}")).to_be_visible()
    expect(_status_line(c1)).to_have_text("Waiting for your decision")
    _pdf_viewer_loaded(c1)
    preview = c1.locator("#viewer .page img").first
    response = c1.request.get(preview.get_attribute("src"))
    assert response.status == 200, response.status
    assert response.headers["content-type"].startswith("image/")
    assert "immutable" in response.headers["cache-control"]
    expect(c1.get_by_role("link", name="Download homepage.pdf")).to_be_visible()
    expect(_panel(c1).locator(".approver-list")).to_contain_text(f"{jane} (you) — Waiting for you")
    _pdf_viewer_loaded(c1)
    j.shot(c1, "01-jane-review-phone")

    comment = "Could the hero image be a little brighter?"
    c1.evaluate("window.__sameDocument = 'kept'")
    c1.get_by_label("Comment").fill(comment)
    c1.get_by_role("button", name="Post comment").click()
    expect(c1.locator("#comments .comment")).to_contain_text(comment)
    expect(c1.locator("#comments .comment .meta")).to_contain_text(jane)
    expect(c1.get_by_label("Comment")).to_have_value("")
    assert c1.evaluate("window.__sameDocument") == "kept", "posting a comment reloaded the page"
    j.shot(c1, "02-jane-commented-phone")

    conditions = "Use the 2025 logo before launch."
    c1.get_by_role("button", name="Approve with conditions").click()
    c1.get_by_label("Condition 1", exact=True).fill(conditions)
    j.shot(c1, "03-jane-conditions-phone")
    c1.get_by_role("button", name=f"Approve version 1 of {TITLE} with these conditions").click()
    expect(_panel(c1)).to_contain_text(f"{jane} — approved with conditions")
    expect(_panel(c1).locator(".conditions .condition-text")).to_have_text(conditions)
    expect(_status_line(c1)).to_have_text(f"Your decision is recorded. Waiting for {john}")
    expect(c1.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
    assert c1.evaluate("window.__sameDocument") == "kept"
    j.shot(c1, "04-jane-decided-phone")

    with reading():
        request = db.session.get(ReviewRequest, setup.request_id)
        first, second = request.approvers
        assert first.decision.outcome == Outcome.APPROVED_WITH_CONDITIONS
        assert [c.text for c in first.decision.conditions] == [conditions]
        assert first.decision.version_sha256 == request.version.sha256
        assert first.last_viewed_at is not None
        assert second.status == ApproverStatus.INVITED and second.decision is None
        assert request.status == RequestStatus.OPEN
        assert request.version.deliverable.state == S.DELIVERED
        posted = db.session.scalars(select(Comment).where(Comment.request_id == request.id)).all()
        assert [(c.body, c.author_contact_id, c.internal) for c in posted] == [
            (comment, first.contact_id, False)]

    c2 = j.actor()
    c2.goto(_review_link(smtp_sink, john_email))
    expect(_status_line(c2)).to_have_text("Waiting for your decision")
    expect(c2.locator("#comments")).to_contain_text(comment)
    expect(_panel(c2).locator(".approver-list")).to_contain_text(
        f"{jane} — Approved with conditions")
    _pdf_viewer_loaded(c2)
    j.shot(c2, "05-john-review-desktop")
    c2.get_by_role("button", name="Approve", exact=True).click()
    c2.get_by_role("button", name=f"Approve version 1 of {TITLE}", exact=True).click()
    expect(_status_line(c2)).to_have_text("Approved by everyone, with conditions")
    expect(_panel(c2)).to_contain_text(f"{john} — approved")
    j.shot(c2, "06-john-approved-desktop")
    # The approval answered at once; the background worker issues the certificate after.
    assert background.wait_until_idle(app, timeout=60), "the certificate job did not finish"
    c2.reload()  # the thread closed with the request (the swap above leaves its form, see report)
    expect(c2.get_by_role("link", name="Download the approval certificate")).to_be_visible()
    expect(c2.locator("#comments form")).to_have_count(0)
    expect(_status_line(c2)).to_have_text("Approved by everyone, with conditions")

    a = j.actor()
    j.sign_in(a, staff_a.email)
    a.goto(f"/deliverables/{setup.deliverable_id}")
    expect(_staff_badge(a)).to_have_text("approved with conditions")
    request_line = a.locator(".request").first
    expect(request_line).to_contain_text("1 condition")
    expect(a.locator("#conditions")).to_contain_text(conditions)
    expect(request_line.get_by_role("link", name=re.compile(r"^Certificate "))).to_be_visible()
    expect(a.locator("#deliverable-main .badge.locked")).to_be_visible()
    j.shot(a, "07-staff-approved-with-conditions")

    with reading():
        d = db.session.get(Deliverable, setup.deliverable_id)
        assert d.state == S.APPROVED_WITH_CONDITIONS
        request = db.session.get(ReviewRequest, setup.request_id)
        assert request.status == RequestStatus.APPROVED_WITH_CONDITIONS
        assert request.closed_at is not None and request.certificate is not None
        assert request.approvers[1].decision.outcome == Outcome.APPROVED
        assert d.current_version.is_locked
    told = [m["Subject"] for m in smtp_sink.to(staff_a.email)]
    assert f"{jane} approved {TITLE} with conditions (version 1)" in told
    assert f"{john} approved {TITLE} (version 1)" in told


# --- 3. finance downloads the certificate and verifies it ----------------------------------

@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_finance_downloads_and_verifies_the_certificate(
        app, browser_page: Journey, finance_f: Person, make_client, make_project,
        make_deliverable, tmp_path):
    j = browser_page
    setup = _deliver(make_client, make_project, make_deliverable, S.APPROVED_WITH_CONDITIONS)
    # The certificate job the approval queued ran on the background worker; were it lost,
    # the worker or the sweep would issue it like this (off the browser's thread, which
    # cannot seal: see off_the_browser_thread). A second run returns the first certificate.
    off_the_browser_thread(app, jobs.certificates.issue, setup.request_id)
    with reading():
        certificate = db.session.scalar(
            select(Certificate).where(Certificate.request_id == setup.request_id))
        assert certificate is not None, "the certificate job did not run"
        public_id, pdf_sha256 = certificate.public_id, certificate.pdf_sha256

    f = j.actor()
    j.sign_in(f, finance_f.email)
    expect(f).to_have_url(re.compile(r"/finance$"))
    expect(f.get_by_role("heading", name="Approved work")).to_be_visible()
    expect(f.get_by_text("1 approved request.")).to_be_visible()
    row = f.locator("#finance-results tbody tr").filter(has_text=TITLE)
    expect(row).to_contain_text(CLIENT)
    expect(row).to_contain_text("with conditions")
    expect(row).to_contain_text(", ".join(name for name, _ in CONTACTS))
    j.shot(f, "01-finance-approved-work")
    with f.expect_download() as download_info:
        row.get_by_role("link", name=public_id).click()
    download = download_info.value
    assert download.suggested_filename == f"approval-certificate-{public_id}.pdf"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    data = saved.read_bytes()
    assert data.startswith(b"%PDF")
    assert hashlib.sha256(data).hexdigest() == pdf_sha256

    v = j.actor(phone=True)  # anyone, signed in or not, on any device
    v.goto("/verify")
    expect(v.get_by_role("heading", name="Verify an approval certificate")).to_be_visible()
    v.get_by_label(re.compile(r"the certificate PDF")).set_input_files(str(saved))
    v.get_by_role("button", name="Verify").click()
    verdict = v.locator("#verify-result .verdict")
    expect(verdict.get_by_role("heading")).to_have_text("Genuine")
    expect(verdict).to_contain_text(f"version 1 of “{TITLE}”")
    expect(verdict).to_contain_text(CLIENT)
    expect(verdict).to_contain_text(public_id)
    j.shot(v, "02-verify-upload-genuine-phone")

    v.goto("/verify")
    v.get_by_label("Certificate id").fill(public_id)
    v.get_by_role("button", name="Verify").click()
    # An id alone is looked up, not checked: "exists" and what it records, never "Genuine".
    expect(verdict.get_by_role("heading")).to_have_text(f"Certificate {public_id} exists")
    expect(verdict).to_contain_text(pdf_sha256)
    j.shot(v, "03-verify-id-on-record-phone")

    v.get_by_label("Certificate id").fill("SO-0000-0000-0000")
    v.get_by_role("button", name="Verify").click()
    expect(verdict.get_by_role("heading")).to_have_text("No such certificate")


# --- 4. a rejection, a new version, and approval ------------------------------------------

def test_rejection_new_version_and_approval(
        browser_page: Journey, staff_a: Person, colleague_b: Person, make_client, make_project,
        make_deliverable, smtp_sink, tmp_path):
    j = browser_page
    setup = _deliver(make_client, make_project, make_deliverable, S.DELIVERED, approvers=1)
    jane, jane_email = CONTACTS[0]
    reason = "The colours are wrong, and we now want a video header."

    c = j.actor()
    c.goto(_review_link(smtp_sink, jane_email))
    c.get_by_role("button", name="Request changes").click()
    c.get_by_label("What should change?").fill(reason)
    _pdf_viewer_loaded(c)
    j.shot(c, "01-client-rejecting")
    c.get_by_role("button", name=f"Request changes to version 1 of {TITLE}").click()
    expect(_panel(c)).to_contain_text(f"{jane} — changes requested")
    expect(_status_line(c)).to_have_text("Changes requested")

    with reading():
        request = db.session.get(ReviewRequest, setup.request_id)
        decision = request.approvers[0].decision
        assert (decision.outcome, decision.text, decision.scope) == (
            Outcome.REJECTED, reason, None)  # in scope or not: staff classify it
        assert request.status == RequestStatus.CHANGES_REQUESTED
        assert request.version.deliverable.state == S.CHANGES_REQUESTED

    a = j.actor()
    j.sign_in(a, staff_a.email)
    rejected = a.locator("#section-rejected")
    expect(rejected.get_by_role("link", name=TITLE)).to_be_visible()
    j.shot(a, "02-staff-dashboard-rejected")
    rejected.get_by_role("link", name=TITLE).click()
    expect(_staff_badge(a)).to_have_text("changes requested")
    expect(a.locator("ul.approvers")).to_contain_text(f"“{reason}”")
    asked = a.locator(".changes-requested")
    expect(asked).to_contain_text("not classified yet")
    asked.get_by_label("A change request (outside the original scope)").check()
    asked.get_by_role("button", name="Save classification").click()
    expect(a.locator("ul.approvers")).to_contain_text(f"“{reason}” · Change request")
    j.shot(a, "03-staff-sees-reason")

    v2 = tmp_path / "homepage-v2.pdf"
    v2.write_bytes(sample_pdf(f"{TITLE}, brighter"))
    a.get_by_label("File", exact=True).set_input_files(str(v2))
    a.get_by_label("What changed").fill("Brighter colours; the video header is quoted apart.")
    a.get_by_role("button", name="Upload version").click()
    expect(a.get_by_text("New version uploaded.")).to_be_visible()
    expect(_staff_badge(a)).to_have_text("draft")
    a.get_by_label("Reviewer").select_option(label=colleague_b.name)
    a.get_by_role("button", name="Submit for review").click()
    expect(_staff_badge(a)).to_have_text("in review")

    b = j.actor()
    j.sign_in(b, colleague_b.email)
    b.locator("#section-my_reviews").get_by_role("link", name=TITLE).click()
    expect(b.get_by_role("heading", name="Internal review of version 2")).to_be_visible()
    b.get_by_role("button", name="Mark reviewed").click()
    expect(_staff_badge(b)).to_have_text("ready")

    a.reload()
    a.get_by_role("group", name="Approvers").get_by_label(re.compile(jane)).check()
    a.get_by_role("button", name="Deliver", exact=True).click()
    expect(a.get_by_text("Delivered. The approvers have been emailed.")).to_be_visible()
    j.shot(a, "04-staff-delivered-v2")

    second_link = _review_link(smtp_sink, jane_email, nth=1)
    assert second_link != _review_link(smtp_sink, jane_email, nth=0)
    c.goto(second_link)
    expect(c.get_by_role("heading", level=1)).to_contain_text("version 2")
    expect(c.get_by_text("What changed:")).to_be_visible()
    history = c.locator("section.history")
    expect(history.get_by_role("heading", name="Earlier versions")).to_be_visible()
    expect(history).to_contain_text("Version 1")
    expect(history).to_contain_text(re.compile(f"{jane}: changes requested", re.IGNORECASE))
    expect(history).to_contain_text(reason)
    expect(_status_line(c)).to_have_text("Waiting for your decision")
    _pdf_viewer_loaded(c)
    j.shot(c, "05-client-sees-history")
    c.get_by_role("button", name="Approve", exact=True).click()
    c.get_by_role("button", name=f"Approve version 2 of {TITLE}", exact=True).click()
    expect(_status_line(c)).to_have_text("Approved by everyone")
    j.shot(c, "06-client-approved-v2")

    with reading():
        d = db.session.get(Deliverable, setup.deliverable_id)
        assert d.state == S.APPROVED
        old, new = d.versions
        assert (old.number, new.number) == (1, 2)
        assert new.is_locked and not old.is_locked
        assert [r.status for r in old.requests] == [RequestStatus.CHANGES_REQUESTED]
        assert [r.status for r in new.requests] == [RequestStatus.APPROVED]
        assert [i.reviewer_id for i in new.reviews] == [colleague_b.id]


# --- 5. an expired link renews itself; a revoked one is dead -------------------------------

def test_expired_link_renews_and_revoked_link_is_dead(
        browser_page: Journey, staff_a: Person, make_client, make_project, make_deliverable,
        smtp_sink):
    j = browser_page
    setup = _deliver(make_client, make_project, make_deliverable, S.DELIVERED, approvers=2)
    (jane, jane_email), (john, john_email) = CONTACTS
    jane_id, john_id = setup.approver_ids

    # Jane's link, after its lifetime ran out (as fourteen quiet days would do).
    with reading():
        approver = db.session.get(Approver, jane_id)
        approver.link_expires_at = utcnow() - timedelta(minutes=5)
        stale = links.review_link(approver)
        check = links.check_token(stale.rsplit("/", 1)[1])
        assert check is not None and check.state == LinkState.EXPIRED
        john_generation = db.session.get(Approver, john_id).link_generation

    c1 = j.actor(phone=True)
    c1.goto(stale)
    expect(c1.get_by_role("heading", name="This link has expired")).to_be_visible()
    expect(c1.get_by_text(TITLE)).to_be_visible()
    j.shot(c1, "01-expired-phone")
    c1.get_by_role("button", name="Send me a new link").click()
    expect(c1.get_by_role("heading", name="Check your email")).to_be_visible()
    j.shot(c1, "02-renewed-phone")

    mails = wait_for_mail(smtp_sink, jane_email, 2)
    fresh = link_in(mails[-1])
    assert mails[-1]["Subject"].startswith(f"Signoff: please review {TITLE} v1 by ")
    told = wait_for_mail(smtp_sink, staff_a.email)
    assert any(m["Subject"] == f"{jane} asked for a new link to {TITLE}" and jane_email
               in text_of(m) for m in told)
    c1.goto(fresh)
    expect(c1).to_have_url(re.compile(r"/review/[\w-]+$"))
    expect(_status_line(c1)).to_have_text("Waiting for your decision")
    # A link's lifetime is the approver's (renewed by every email), so the old one works too.
    c1.goto(stale)
    expect(_status_line(c1)).to_have_text("Waiting for your decision")

    c2 = j.actor()
    john_link = _review_link(smtp_sink, john_email)
    c2.goto(john_link)
    expect(_status_line(c2)).to_have_text("Waiting for your decision")

    a = j.actor()
    j.sign_in(a, staff_a.email)
    a.goto(f"/deliverables/{setup.deliverable_id}")
    row = a.locator("ul.approvers > li").filter(has_text=john)
    row.get_by_role("button", name="Revoke link").click()
    expect(a.get_by_text(f"{john}'s link no longer works.")).to_be_visible()
    assert f"Revoke {john}'s link? It stops working at once." in j.dialogs
    j.shot(a, "03-staff-revoked")

    c2.reload()
    expect(c2.get_by_role("heading", name="This link no longer works")).to_be_visible()
    expect(c2.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
    c2.goto(john_link)
    expect(c2.get_by_role("heading", name="This link no longer works")).to_be_visible()
    j.shot(c2, "04-revoked-desktop")

    with reading():
        assert db.session.get(Approver, john_id).link_generation == john_generation + 1
        verbs = db.session.scalars(select(AuditEvent.verb).where(
            AuditEvent.deliverable_id == setup.deliverable_id)).all()
        assert "link.renewal_requested" in verbs and "link.revoked" in verbs
        assert db.session.get(Approver, john_id).decision is None
