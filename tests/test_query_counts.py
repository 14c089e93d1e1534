"""Pages answer in a fixed number of queries, however much they show."""
from __future__ import annotations

import io

from portal import workflow
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import DeliverableState, Outcome, Policy, RejectionScope
from portal.workflow.comments import post_comment
from portal.workflow.links import issue_token
from tests.conftest import future, on_screen


def _review_page_queries(browser, count_queries, d, comments: int) -> int:
    request = d.open_request
    approver = request.approvers[0]
    for i in range(comments):
        post_comment(approver.contact, request, f"Comment number {i}",
                     seen_sha256=request.version.sha256)
    db.session.commit()
    browser.get(f"/r/{issue_token(approver)}")
    with count_queries() as counter:
        response = browser.get(browser.review)
    assert response.status_code == 200
    return counter.count


def test_review_page_queries_do_not_grow_with_comments(report, browser, count_queries,
                                                       make_deliverable):
    few = _review_page_queries(browser, count_queries, make_deliverable(
        DeliverableState.DELIVERED, approvers=3), comments=3)
    many = _review_page_queries(browser, count_queries, make_deliverable(
        DeliverableState.DELIVERED, approvers=3), comments=30)
    report(f"review page: {few} queries with 3 comments, {many} with 30")
    assert many == few
    assert few <= 20


def test_review_page_queries_do_not_grow_with_versions(report, browser, count_queries,
                                                       make_deliverable, staff, colleague):
    d = make_deliverable(DeliverableState.DELIVERED, approvers=2)
    counts = {}
    for n in range(2, 6):  # more rounds: reject, new version, review, deliver
        workflow.record_decision(d.open_request.approvers[0], Outcome.REJECTED, "Again",
                                 RejectionScope.IN_SCOPE,
                                 seen_sha256=on_screen(d.open_request.approvers[0]))
        workflow.upload_version(staff, d, io.BytesIO(sample_pdf(f"v{n}")), f"v{n}.pdf", "More")
        workflow.submit_for_review(staff, d, colleague)
        workflow.review_internally(colleague, d, approve=True)
        workflow.deliver(staff, d, d.project.client.contacts[:2], Policy.PARALLEL, future())
        db.session.commit()
        counts[n] = _review_page_queries(browser, count_queries, d, comments=1)
    report(f"review page queries by version under review: {counts}")
    assert counts[5] == counts[2]  # the history of earlier versions costs a fixed amount


def test_dashboard_and_list_queries_do_not_grow_with_rows(report, browser, count_queries,
                                                          make_deliverable, staff):
    def counts() -> tuple[int, int]:
        with count_queries() as board:
            assert browser.get("/").status_code == 200
        with count_queries() as listing:
            assert browser.get("/deliverables").status_code == 200
        return board.count, listing.count

    browser.login(staff.email)
    for state in DeliverableState:
        make_deliverable(state)
    small = counts()
    for state in DeliverableState:
        for _ in range(3):
            make_deliverable(state)
    large = counts()
    report(f"dashboard: {small[0]} queries; list: {small[1]} queries")
    assert large == small
