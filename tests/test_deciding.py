"""Deciding in two taps, "Request changes" instead of "Reject", and staff classifying the
requested changes (within scope or a change request) for metrics and the finance CSV."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select, text

from portal import workflow
from portal.demo.samples import sample_pdf
from portal.errors import IllegalTransition, InvalidInput, NotAllowed
from portal.extensions import db
from portal.models import (
    ApproverStatus,
    AuditEvent,
    Decision,
    DeliverableState,
    OutboxMessage,
    Outcome,
    Policy,
    RejectionScope,
    RequestStatus,
    Role,
)
from portal.reports import metrics
from portal.workflow.classification import classify_change_request
from portal.workflow.links import issue_token
from tests.conftest import future, on_screen

S = DeliverableState
TITLE = "Homepage v3"  # what make_deliverable calls it
IN, CR = RejectionScope.IN_SCOPE, RejectionScope.CHANGE_REQUEST


def _open(browser, approver) -> str:
    assert browser.get(f"/r/{issue_token(approver)}").status_code == 303
    return browser.get(browser.review).get_data(as_text=True)


def _panel(html: str) -> str:
    start = html.index('<section id="decision-panel"')
    return html[start:html.index("</section>", start)]


def _words(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'").split())


def _signed_in(make_browser, user):
    browser = make_browser()
    browser.login(user.email)
    return browser


def _events(verb: str) -> list[dict]:
    return [json.loads(e.detail) for e in db.session.scalars(
        select(AuditEvent).where(AuditEvent.verb == verb).order_by(AuditEvent.seq))]


# --- the client: two taps, no tick box -----------------------------------------------------

def test_approve_in_two_taps_without_javascript(make_deliverable, browser):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    panel = _panel(_open(browser, approver))
    # Tap 1 is a GET form (works without JavaScript); it names the choice.
    assert re.search(r'<form method="get"[^>]*class="choices"', panel)
    assert '<button type="submit" name="choice" value="approve">Approve</button>' in panel

    chosen = _panel(browser.get(f"{browser.review}?choice=approve").get_data(as_text=True))
    # Tap 2 is one POST button that says the act; nothing to tick.
    assert f"Approve version 1 of {TITLE}</button>" in chosen
    assert 'type="checkbox"' not in chosen and "Confirm approval" not in chosen
    assert '<form method="post"' in chosen

    response = browser.post(f"{browser.review}/decision", {"choice": "approve"})
    assert response.status_code == 303
    decision = approver.decision
    assert decision.outcome == Outcome.APPROVED and decision.version_sha256 == on_screen(approver)
    db.session.refresh(d)
    assert d.state == S.APPROVED


def test_the_htmx_answers_carry_focus_and_an_announcement(make_deliverable, browser):
    d = make_deliverable(S.DELIVERED)
    _open(browser, d.open_request.approvers[0])
    fragment = browser.get(f"{browser.review}?choice=approve",
                           headers={"HX-Request": "true"}).get_data(as_text=True)
    head = fragment.lstrip().split(">", 1)[0]
    assert head.startswith('<section id="decision-panel"') and 'tabindex="-1"' in head
    assert f'data-announce="Press Approve version 1 of {TITLE} to record your approval."' in head

    done = browser.htmx_post(f"{browser.review}/decision", {"choice": "approve"})
    assert done.status_code == 200
    head = done.get_data(as_text=True).lstrip().split(">", 1)[0]
    assert 'data-announce="Approved by everyone."' in head


def test_the_step_up_code_is_announced_too(make_deliverable, browser):
    d = make_deliverable(S.DELIVERED)
    d.open_request.require_code = True
    db.session.commit()
    _open(browser, d.open_request.approvers[0])
    sent = browser.htmx_post(f"{browser.review}/code").get_data(as_text=True)
    assert 'data-announce="We have emailed you a code. It works for 10 minutes."' in sent
    wrong = browser.htmx_post(f"{browser.review}/code/confirm", {"code": "000000"})
    assert wrong.status_code == 422
    assert 'data-announce="That code is not right. Check the newest email and try again."' \
        in wrong.get_data(as_text=True)


def test_request_changes_asks_only_what_should_change(make_deliverable, browser):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    panel = _panel(_open(browser, approver))
    assert '<button type="submit" name="choice" value="request_changes" class="secondary">' \
           'Request changes</button>' in panel
    assert "Reject" not in panel and "danger" not in panel

    chosen = _panel(browser.get(f"{browser.review}?choice=request_changes")
                    .get_data(as_text=True))
    assert '<label for="text">What should change?</label>' in chosen
    assert f"Request changes to version 1 of {TITLE}</button>" in chosen
    assert 'name="scope"' not in chosen and 'type="checkbox"' not in chosen

    empty = browser.post(f"{browser.review}/decision", {"choice": "request_changes", "text": " "})
    assert empty.status_code == 422
    assert "Write what should change" in _panel(empty.get_data(as_text=True))
    # A scope sent anyway (an old form, a crafted post) is not the client's to set.
    done = browser.post(f"{browser.review}/decision", {
        "choice": "request_changes", "text": "Bigger logo, please", "scope": "in_scope"})
    assert done.status_code == 303
    decision = approver.decision
    assert (decision.outcome, decision.text) == (Outcome.REJECTED, "Bigger logo, please")
    assert decision.scope is None and decision.classified_at is None
    [event] = _events("decision.rejected")
    assert "scope" not in event

    page = _words(_panel(browser.get(browser.review).get_data(as_text=True)))
    assert "Changes requested" in page and "— changes requested" in page
    assert "rejected" not in page.lower()


def test_the_stored_value_stays_rejected(make_deliverable):
    d = make_deliverable(S.CHANGES_REQUESTED)
    decision = d.versions[0].requests[0].approvers[0].decision
    assert Outcome.REJECTED.value == "rejected" and Outcome.REJECTED.label == "changes requested"
    assert ApproverStatus.REJECTED.label == "changes requested"
    stored = db.session.execute(text("SELECT outcome FROM decisions WHERE id = :id"),
                                {"id": decision.id}).scalar_one()
    assert stored == "rejected"


def test_the_owner_is_told_in_plain_words_and_asked_to_classify(make_deliverable, browser):
    d = make_deliverable(S.DELIVERED)
    _open(browser, d.open_request.approvers[0])
    browser.post(f"{browser.review}/decision", {"choice": "request_changes",
                                                "text": "Swap the photo"})
    message = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.to_addr == d.owner.email, OutboxMessage.subject.contains("changes")))
    assert message.subject.endswith(f"requested changes to {TITLE} (version 1)")
    assert "What should change: Swap the photo" in message.body_text
    assert "classify it on the deliverable page" in message.body_text
    assert f"/deliverables/{d.id}" in message.body_text


# --- the domain: staff classify, and correct ----------------------------------------------

def test_staff_classify_then_correct_each_audited(make_deliverable, staff, colleague):
    d = make_deliverable(S.CHANGES_REQUESTED)
    decision = d.versions[0].requests[0].approvers[0].decision
    assert decision.classification is None and decision.classified_at is None
    at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

    classify_change_request(staff, decision, CR, "  Quote CR-12 sent  ", now=at)
    db.session.commit()
    assert (decision.classification, decision.classification_note) == (CR, "Quote CR-12 sent")
    assert (decision.classified_by_id, decision.classified_at) == (staff.id, at)
    assert d.last_activity_at == at
    assert _events("decision.classified") == [
        {"note": "Quote CR-12 sent", "scope": "change_request", "version": 1}]

    with pytest.raises(IllegalTransition, match="already classified as change request"):
        classify_change_request(colleague, decision, CR, "Quote CR-12 sent")
    db.session.rollback()
    classify_change_request(colleague, decision, IN, "Agreed on the call: ours")
    db.session.commit()
    assert decision.classification == IN and decision.classified_by_id == colleague.id
    assert _events("decision.reclassified") == [{
        "note": "Agreed on the call: ours", "scope": "in_scope", "version": 1,
        "was": "change_request"}]


@pytest.mark.parametrize(("scope", "note", "error"), [
    (None, "", "Choose within the original scope or a change request."),
    (CR, "two\nlines", "line break"),
    (CR, "x" * 501, "longer than 500"),
], ids=["no-scope", "multi-line-note", "long-note"])
def test_a_classification_needs_a_scope_and_a_one_line_note(make_deliverable, staff, scope,
                                                           note, error):
    decision = make_deliverable(S.CHANGES_REQUESTED).versions[0].requests[0].approvers[0].decision
    with pytest.raises(InvalidInput, match=error):
        classify_change_request(staff, decision, scope, note)
    db.session.rollback()
    assert db.session.get(Decision, decision.id).classified_at is None


def test_only_staff_classify_only_requested_changes(make_deliverable, make_user, staff):
    decision = make_deliverable(S.APPROVED).versions[0].requests[0].approvers[0].decision
    with pytest.raises(IllegalTransition, match="Only requested changes"):
        classify_change_request(staff, decision, CR)
    db.session.rollback()
    asked = make_deliverable(S.CHANGES_REQUESTED).versions[0].requests[0].approvers[0]
    with pytest.raises(NotAllowed):
        classify_change_request(make_user(Role.FINANCE), asked.decision, CR)
    with pytest.raises(NotAllowed):
        classify_change_request(asked.contact, asked.decision, CR)  # type: ignore[arg-type]


def test_a_clients_old_answer_is_kept_but_is_not_a_classification(make_deliverable, staff):
    """Before 0017 the client chose; those rows keep the value with no classified_at."""
    decision = make_deliverable(S.CHANGES_REQUESTED).versions[0].requests[0].approvers[0].decision
    decision.scope = IN  # as an old row holds it
    db.session.commit()
    assert decision.classification is None  # the client's answer is not staff's
    classify_change_request(staff, decision, CR)
    db.session.commit()
    [event] = _events("decision.classified")
    assert event["client_said"] == "in_scope" and event["scope"] == "change_request"


# --- the staff page and route ----------------------------------------------------------------

def test_the_deliverable_page_makes_classifying_the_next_step(make_deliverable, make_browser,
                                                              staff):
    d = make_deliverable(S.CHANGES_REQUESTED)
    decision = d.versions[0].requests[0].approvers[0].decision
    sam = _signed_in(make_browser, staff)
    html = sam.get(f"/deliverables/{d.id}").get_data(as_text=True)
    ask = html.index("Before the next version: within the original scope, or a change request?")
    assert ask < html.index("Upload a new version") < html.index('name="file"')
    words = _words(html)
    assert f"{decision.approver.contact.name} requested changes to version 1" in words
    assert "Wrong colours not classified yet Before the next version" in words

    response = sam.post(f"/decisions/{decision.id}/classification",
                        {"scope": "change_request", "note": "Quote CR-12"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/deliverables/{d.id}")
    words = _words(sam.get(f"/deliverables/{d.id}").get_data(as_text=True))
    assert "Classified as change request." in words
    assert "Change request · classified by Sam Staff" in words and "“Quote CR-12”" in words
    assert "Correct the classification" in words
    db.session.refresh(decision)
    assert decision.classification == CR and decision.classified_by_id == staff.id

    # htmx: the page's main block, the correction recorded.
    fragment = sam.htmx_post(f"/decisions/{decision.id}/classification", {"scope": "in_scope"})
    assert fragment.status_code == 200
    assert fragment.get_data(as_text=True).lstrip().startswith('<div id="deliverable-main"')
    db.session.refresh(decision)
    assert decision.classification == IN and decision.classification_note == ""


def test_classify_refusals_keep_nothing(make_deliverable, make_browser, make_user, staff):
    d = make_deliverable(S.CHANGES_REQUESTED)
    decision = d.versions[0].requests[0].approvers[0].decision
    sam = _signed_in(make_browser, staff)
    missing = sam.post(f"/decisions/{decision.id}/classification", {"note": "?"})
    assert missing.status_code == 422
    assert "Choose within the original scope or a change request." in missing.get_data(
        as_text=True)
    assert sam.post("/decisions/999999/classification", {"scope": "in_scope"}).status_code == 404
    fiona = _signed_in(make_browser, make_user(Role.FINANCE))
    assert fiona.post(f"/decisions/{decision.id}/classification",
                      {"scope": "in_scope"}).status_code == 403
    stranger = make_browser()
    response = stranger.post(f"/decisions/{decision.id}/classification", {"scope": "in_scope"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    db.session.refresh(decision)
    assert decision.classified_at is None
    assert _events("decision.classified") == []


def test_an_earlier_round_can_be_classified_from_the_versions_list(make_deliverable,
                                                                   make_browser, staff):
    d = make_deliverable(S.CHANGES_REQUESTED)
    decision = d.versions[0].requests[0].approvers[0].decision
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf("v2")), "v2.pdf", "Fixed")
    db.session.commit()
    html = _signed_in(make_browser, staff).get(f"/deliverables/{d.id}").get_data(as_text=True)
    assert "requested changes to version" not in html  # no longer the next step…
    words = _words(html)
    assert "Wrong colours” · not classified yet Classify" in words  # …but still there
    assert f'action="/decisions/{decision.id}/classification"' in html


# --- metrics and the finance CSV use staff's classification ---------------------------------

def _round_two(d, staff, colleague):
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf("v2")), "v2.pdf", "Fixed")
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    return workflow.deliver(staff, d, d.project.client.contacts[:1], Policy.PARALLEL, future())


def test_metrics_count_requested_changes_by_classification(make_deliverable, make_browser,
                                                           staff):
    decisions = [make_deliverable(S.CHANGES_REQUESTED).versions[0].requests[0].approvers[0]
                 .decision for _ in range(4)]
    classify_change_request(staff, decisions[0], CR)
    classify_change_request(staff, decisions[1], CR)
    classify_change_request(staff, decisions[2], IN)
    decisions[3].scope = IN  # a client's own pre-0017 answer: still unclassified
    db.session.commit()
    today = date.today()
    report = metrics.report(metrics.Period(today.replace(day=1), today), datetime.now(UTC))
    assert report.overall.changes == metrics.Changes(in_scope=1, change_requests=2,
                                                     unclassified=1)
    assert report.overall.changes.total == 4

    page = _signed_in(make_browser, staff).get("/metrics").get_data(as_text=True)
    tile = _words(page[page.index('<section class="metric" id="metric-changes"'):])
    assert tile.startswith("Changes requested 4 requests sent back by the client "
                           "2 change requests · 1 within scope · 1 not classified yet")


def test_the_finance_csv_lists_the_changes_asked_on_the_way(make_deliverable, make_user,
                                                            make_browser, staff, colleague):
    d = make_deliverable(S.CHANGES_REQUESTED)
    first = d.versions[0].requests[0].approvers[0].decision
    classify_change_request(staff, first, CR, "Quote CR-12")
    request = _round_two(d, staff, colleague)
    workflow.record_decision(request.approvers[0], Outcome.APPROVED,
                             seen_sha256=on_screen(request.approvers[0]))
    unclassified = make_deliverable(S.CHANGES_REQUESTED)
    other_name = unclassified.versions[0].requests[0].approvers[0].contact.name
    request = _round_two(unclassified, staff, colleague)
    workflow.record_decision(request.approvers[0], Outcome.APPROVED,
                             seen_sha256=on_screen(request.approvers[0]))
    db.session.commit()
    assert request.status == RequestStatus.APPROVED
    fiona = _signed_in(make_browser, make_user(Role.FINANCE))
    rows = list(csv.reader(io.StringIO(fiona.get("/finance/export.csv").get_data(as_text=True))))
    header, body = rows[0], [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert header[-2:] == ["change_requests", "changes_requested"]
    by_id = {r["deliverable"] + r["sha256"]: r for r in body}
    name = first.approver.contact.name
    [classified] = [r for k, r in by_id.items() if k.endswith(d.current_version.sha256)]
    assert classified["change_requests"] == "1"
    assert classified["changes_requested"] == \
        f"version 1, change request (Quote CR-12): {name}: Wrong colours"
    [other] = [r for r in body if r is not classified]
    assert other["change_requests"] == "0"
    assert other["changes_requested"] == \
        f"version 1, not classified yet: {other_name}: Wrong colours"
    assert db.session.scalar(select(func.count()).select_from(Decision)) == 4
