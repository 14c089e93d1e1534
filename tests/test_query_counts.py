"""Pages answer in a fixed number of queries, however much they show."""
from __future__ import annotations

import io

from sqlalchemy import select

from portal import workflow
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import (
    Condition,
    ConditionStatus,
    Decision,
    DeliverableState,
    Outcome,
    PointStatus,
    Policy,
    Role,
    Version,
)
from portal.workflow.comments import post_comment
from portal.workflow.conditions import resolve_condition
from portal.workflow.feedback import resolve_point
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
    assert few <= 8  # issue 14: SQLite's BEGIN included


def test_review_page_queries_do_not_grow_with_versions(report, browser, count_queries,
                                                       make_deliverable, staff, colleague):
    d = make_deliverable(DeliverableState.DELIVERED, approvers=2)
    counts = {}
    for n in range(2, 6):  # more rounds: reject, new version, review, deliver
        workflow.record_decision(d.open_request.approvers[0], Outcome.REJECTED, "Again",
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
    """Mine or everyone's, with rows marked "new client comments" (one query for all)."""
    def counts() -> tuple[int, int, int]:
        with count_queries() as board:
            assert "new client comment" in browser.get("/").get_data(as_text=True)
        with count_queries() as everyone:
            assert "new client comment" in browser.get("/?scope=everyone").get_data(
                as_text=True)
        with count_queries() as listing:
            assert "new client comment" in browser.get("/deliverables").get_data(as_text=True)
        return board.count, everyone.count, listing.count

    def add() -> None:
        for state in DeliverableState:
            d = make_deliverable(state)
            if d.open_request:  # a client comment, some of them seen
                approver = d.open_request.approvers[0]
                post_comment(approver.contact, d.open_request, "New",
                             seen_sha256=on_screen(approver))
                db.session.commit()
                if browser.get(f"/deliverables/{d.id}").status_code == 200 and d.id % 2:
                    browser.post(f"/deliverables/{d.id}/seen", {"up_to": "1000000"})

    browser.login(staff.email)
    add()
    small = counts()
    for _ in range(3):
        add()
    large = counts()
    report(f"dashboard: {small[0]} queries (everyone's: {small[1]}); list: {small[2]} queries")
    assert large == small


# --- conditions of approvals ----------------------------------------------------------------

def _approve_with_conditions(request, items: int) -> None:
    for approver in request.approvers:
        workflow.record_decision(approver, Outcome.APPROVED_WITH_CONDITIONS,
                                 conditions=[f"Condition {i} of {approver.contact.name}"
                                             for i in range(items)],
                                 seen_sha256=on_screen(approver))


def _new_version_meeting_half(staff, colleague, d, n: int, *, deliver: bool = True):
    """Version n, which meets every other open condition (the rest are left open)."""
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf(f"v{n}")), f"v{n}.pdf", "Fixes")
    open_ones = db.session.scalars(
        select(Condition).join(Decision).join(Version, Decision.version_id == Version.id)
        .where(Condition.status == ConditionStatus.OPEN, Version.deliverable_id == d.id)
        .order_by(Condition.id)).all()
    for condition in open_ones[::2]:
        resolve_condition(staff, condition, ConditionStatus.MET, d.current_version)
    if deliver:
        workflow.submit_for_review(staff, d, colleague)
        workflow.review_internally(colleague, d, approve=True)
        workflow.deliver(staff, d, d.project.client.contacts[:2], Policy.PARALLEL, future())
    db.session.commit()


def test_pages_with_conditions_answer_in_fixed_queries(report, browser, make_browser,
                                                       count_queries, make_deliverable,
                                                       staff, colleague):
    """The client's page (earlier versions' conditions) and the staff deliverable page
    (the checklist) cost the same however many versions and conditions there are."""
    d = make_deliverable(DeliverableState.DELIVERED, approvers=2)
    sam = make_browser()
    sam.login(staff.email)
    counts = {}
    for n in range(2, 6):
        _approve_with_conditions(d.open_request or d.requests[0], items=n)
        _new_version_meeting_half(staff, colleague, d, n)
        client = _review_page_queries(browser, count_queries, d, comments=1)
        with count_queries() as staff_page:
            assert sam.get(f"/deliverables/{d.id}").status_code == 200
        counts[n] = (client, staff_page.count)
    report(f"(client review page, staff deliverable page) queries by version: {counts}")
    assert counts[5] == counts[3]


def test_finance_and_dashboard_queries_do_not_grow_with_conditions(
        report, make_browser, make_user, count_queries, make_deliverable, staff, colleague):
    finance, sam = make_browser(), make_browser()
    finance.login(make_user(Role.FINANCE).email)
    sam.login(staff.email)

    def add(items: int) -> None:
        for resolved in (False, True):
            d = make_deliverable(DeliverableState.DELIVERED, approvers=2)
            _approve_with_conditions(d.open_request, items)
            db.session.commit()
            if resolved:
                _new_version_meeting_half(staff, colleague, d, 2, deliver=False)

    def counts() -> tuple[int, int, int]:
        with count_queries() as listing:
            assert finance.get("/finance").status_code == 200
        with count_queries() as export:
            assert finance.get("/finance/export.csv").status_code == 200
        with count_queries() as board:
            assert "open condition" in sam.get("/").get_data(as_text=True)
        return listing.count, export.count, board.count

    add(1)
    small = counts()
    for _ in range(3):
        add(5)
    large = counts()
    report(f"with conditions: finance list {small[0]}, CSV {small[1]}, dashboard {small[2]} "
           "queries")
    assert large == small


def test_review_and_staff_pages_do_not_grow_with_pages_and_pins(report, make_browser,
                                                               count_queries, make_deliverable,
                                                               staff, colleague):
    from portal.workflow.pins import Pin
    from tests.test_renders import three_page_pdf

    def counts(pdf: bytes, pins: int) -> tuple[int, int]:
        d = make_deliverable(DeliverableState.DRAFT, with_version=False)
        workflow.upload_version(staff, d, io.BytesIO(pdf), "doc.pdf", "")
        workflow.submit_for_review(staff, d, colleague)
        workflow.review_internally(colleague, d, approve=True)
        request = workflow.deliver(staff, d, d.project.client.contacts[:1], Policy.PARALLEL,
                                   future())
        approver = request.approvers[0]
        for i in range(pins):
            post_comment(approver.contact, request, f"Pin {i}", seen_sha256=on_screen(approver),
                         pin=Pin(1 + i % 3 if pdf != small_pdf else 1, 0.5, 0.5))
        db.session.commit()
        client, sam = make_browser(), make_browser()
        sam.login(staff.email)
        client.get(f"/r/{issue_token(approver)}")
        with count_queries() as review:
            assert client.get(client.review).status_code == 200
        with count_queries() as deliverable_page:
            assert sam.get(f"/deliverables/{d.id}").status_code == 200
        return review.count, deliverable_page.count

    small_pdf = sample_pdf("one page")
    few, many = counts(small_pdf, 1), counts(three_page_pdf(), 24)
    report(f"review page / staff deliverable page: {few} queries with 1 page and 1 pin, "
           f"{many} with 3 pages and 24 pins")
    assert many == few


def test_pages_with_earlier_points_answer_in_fixed_queries(report, browser, make_browser,
                                                           count_queries, make_deliverable,
                                                           staff, colleague):
    """The client's "points from earlier versions" and the staff page's list of the
    client's points cost the same however many versions and points there are."""
    d = make_deliverable(DeliverableState.DELIVERED, approvers=2)
    sam = make_browser()
    sam.login(staff.email)
    counts = {}
    for n in range(2, 6):
        request = d.open_request
        for approver in request.approvers:
            for i in range(n):
                post_comment(approver.contact, request, f"Point {i}",
                             seen_sha256=on_screen(approver))
        db.session.commit()
        first = request.approvers[0]
        workflow.record_decision(first, Outcome.REJECTED, "Again", seen_sha256=on_screen(first))
        workflow.upload_version(staff, d, io.BytesIO(sample_pdf(f"v{n}")), f"v{n}.pdf", "More")
        workflow.submit_for_review(staff, d, colleague)
        workflow.review_internally(colleague, d, approve=True)
        workflow.deliver(staff, d, d.project.client.contacts[:2], Policy.PARALLEL, future())
        for k, point in enumerate(request.comments):  # some addressed, some won't change
            if k % 3 == 0:
                resolve_point(staff, point, PointStatus.ADDRESSED, d.current_version, "Done")
            elif k % 3 == 1:
                resolve_point(staff, point, PointStatus.WONT_CHANGE, note="As agreed")
        db.session.commit()
        client = _review_page_queries(browser, count_queries, d, comments=1)
        with count_queries() as staff_page:
            assert sam.get(f"/deliverables/{d.id}").status_code == 200
        counts[n] = (client, staff_page.count)
    report(f"with earlier points: (client review page, staff deliverable page) queries by "
           f"version: {counts}")
    assert counts[5] == counts[3]
