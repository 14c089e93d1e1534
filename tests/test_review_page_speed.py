"""The client's review page reads a fixed few statements, however many comments, pins, pages
and versions; an htmx comment post answers with what it adds, not the thread (issue 14)."""
from __future__ import annotations

import io
import re
import threading

from sqlalchemy import delete, event, select, update

from portal import workflow
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import (
    Comment,
    DeliverableState,
    Outcome,
    PageRender,
    Policy,
    RenderStatus,
    VersionRender,
)
from portal.workflow.comments import post_comment
from portal.workflow.links import issue_token
from portal.workflow.pins import Pin
from tests.conftest import future, on_screen

MAX_STATEMENTS = 8  # SQLite's BEGIN included
ITEM = re.compile(r'<li class="comment ')


def _show_pages(version_id: int, pages: int) -> None:
    """The version as `pages` rendered pages (the rows the viewer reads; no images)."""
    db.session.execute(delete(PageRender).where(PageRender.version_id == version_id))
    db.session.execute(update(VersionRender).where(VersionRender.version_id == version_id)
                       .values(status=RenderStatus.READY, page_count=pages))
    db.session.add_all(PageRender(version_id=version_id, number=n, width=1131, height=1600,
                                  thumb_width=170, thumb_height=240, display_key=f"{n:064x}",
                                  thumb_key=f"{n + 999:064x}", media_type="image/jpeg", text="")
                       for n in range(1, pages + 1))
    db.session.commit()


def _comments(request, count: int, *, pinned_on: int = 0) -> None:
    """`count` comments from the approvers and staff; pinned across `pinned_on` pages."""
    for i in range(count):
        author = request.sent_by if i % 3 == 2 else request.approvers[i % len(
            request.approvers)].contact
        pin = Pin(1 + i % pinned_on, 0.25, 0.5, 0.1, 0.1) if pinned_on else None
        post_comment(author, request, f"Comment {i}", seen_sha256=request.version.sha256,
                     pin=pin)
    db.session.commit()


def _statements(count_queries, browser, url: str) -> tuple[int, str]:
    with count_queries() as counter:
        response = browser.get(url)
    assert response.status_code == 200
    return counter.count, response.get_data(as_text=True)


def test_review_page_statements_do_not_grow_with_comments_pins_pages_or_versions(
        report, browser, count_queries, make_deliverable, staff, colleague):
    d = make_deliverable(DeliverableState.DELIVERED, approvers=2)
    counts = {}
    browser.get(f"/r/{issue_token(d.open_request.approvers[0])}")
    counts["1 version, no comments"] = _statements(count_queries, browser, browser.review)[0]
    for n in range(2, 7):  # five more rounds, each with conditions and a request for changes
        request = d.open_request
        workflow.record_decision(request.approvers[1], Outcome.APPROVED_WITH_CONDITIONS,
                                 conditions=["Darker blue", "Bigger logo"],
                                 seen_sha256=on_screen(request.approvers[1]))
        workflow.record_decision(request.approvers[0], Outcome.REJECTED, "Again",
                                 seen_sha256=on_screen(request.approvers[0]))
        workflow.upload_version(staff, d, io.BytesIO(sample_pdf(f"v{n}")), f"v{n}.pdf", "More")
        workflow.submit_for_review(staff, d, colleague)
        workflow.review_internally(colleague, d, approve=True)
        workflow.deliver(staff, d, d.project.client.contacts[:2], Policy.PARALLEL, future())
        db.session.commit()
    request = d.open_request
    browser.get(f"/r/{issue_token(request.approvers[0])}")
    counts["6 versions"] = _statements(count_queries, browser, browser.review)[0]
    _comments(request, 30)
    counts["6 versions, 30 comments"] = _statements(count_queries, browser, browser.review)[0]
    _show_pages(request.version_id, 40)
    _comments(request, 60, pinned_on=40)
    count, html = _statements(count_queries, browser, browser.review)
    counts["6 versions, 90 comments, 60 pins on 40 pages"] = count
    assert len(ITEM.findall(html)) == 90 and html.count('class="marker') == 60
    assert html.count('class="page"') == 40 and "Version 5" in html and "Version 1" in html
    report(f"review page statements: {counts}")
    assert len(set(counts.values())) == 1, counts
    assert counts["6 versions"] <= MAX_STATEMENTS


def _open_page(browser, request) -> str:
    browser.get(f"/r/{issue_token(request.approvers[0])}")
    return browser.get(browser.review).get_data(as_text=True)


def _after(html: str) -> str:
    found = re.search(r'name="after" id="comment-after" value="(\d+)"', html)
    assert found, "the comment form names no newest comment"
    return found.group(1)


class _AfterCommit:
    """The statements this thread (the request's: the test client runs it here) sends after
    its commit; the in-process worker's jobs run in a thread of their own."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.committed = False
        self.after: list[str] = []

    def commit(self, _conn: object) -> None:
        self.committed = self.committed or threading.get_ident() == self.thread

    def statement(self, _conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if self.committed and threading.get_ident() == self.thread:
            self.after.append(statement)


def test_htmx_post_answers_with_the_new_comment_in_a_fixed_number_of_statements(
        report, browser, count_queries, make_deliverable, app):
    """The answer is the new comment and the counts, a few per cent of the page, read in
    the post's own transaction: nothing is asked of the database after the commit."""
    sizes, counts = {}, {}
    for comments in (3, 30):
        d = make_deliverable(DeliverableState.DELIVERED, approvers=3)
        _comments(d.open_request, comments)
        page = _open_page(browser, d.open_request)
        browser.csrf_token()  # fetched now, not inside the count
        watch = _AfterCommit()
        event.listen(db.engine, "commit", watch.commit)
        event.listen(db.engine, "before_cursor_execute", watch.statement)
        try:
            with count_queries() as counter:
                response = browser.htmx_post(f"{browser.review}/comments",
                                             {"body": f"New at {comments}",
                                              "after": _after(page)})
        finally:
            event.remove(db.engine, "commit", watch.commit)
            event.remove(db.engine, "before_cursor_execute", watch.statement)
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert watch.committed and watch.after == []
        assert len(ITEM.findall(html)) == 1 and f"New at {comments}" in html
        assert f">({comments + 1})</span>" in html
        counts[comments] = counter.count
        sizes[comments] = (len(html), len(page))
    report(f"htmx comment post: statements {counts}; bytes (answer, page) {sizes}")
    assert counts[3] == counts[30]
    assert sizes[30][0] <= 0.05 * sizes[30][1]


def test_the_thread_after_an_htmx_post_is_the_thread_on_a_fresh_page(
        browser, make_deliverable, make_browser, staff):
    """What the person sees after posting (the page they had, plus the answer) is what a
    reload shows: comments that arrived meanwhile, theirs, the count, the pins' numbers."""
    d = make_deliverable(DeliverableState.DELIVERED, approvers=2)
    request = d.open_request
    _show_pages(request.version_id, 3)
    _comments(request, 2, pinned_on=3)  # pins #1 and #2
    page = _open_page(browser, request)
    meanwhile = request.approvers[1].contact
    post_comment(meanwhile, request, "Arrived meanwhile",
                 seen_sha256=on_screen(request.approvers[1]), pin=Pin(3, 0.5, 0.5))  # pin #3
    post_comment(request.sent_by, request, "Internal", internal=True, pin=Pin(1, 0.1, 0.1))
    db.session.commit()

    response = browser.htmx_post(f"{browser.review}/comments", {
        "body": "Mine, on page 2", "after": _after(page), "page": "2", "x": "0.4", "y": "0.6"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    mine = db.session.scalar(select(Comment).where(Comment.body == "Mine, on page 2"))
    items = re.findall(r'<li class="comment [^"]*" id="comment-(\d+)"', html)
    assert [int(i) for i in items] == [mine.id - 2, mine.id]  # the internal note is not sent
    assert "Arrived meanwhile" in html and "p. 3 · #3" in html and "p. 2 · #4" in html
    assert "Internal" not in html
    assert '<svg hx-swap-oob="beforeend:#page-2 svg.layer">' in html
    assert 'aria-label="Comment #4"' in html and 'aria-label="Comment #3"' in html
    assert ">(4)</span>" in html and f'value="{mine.id}" hx-swap-oob="true"' in html

    fresh = browser.get(browser.review).get_data(as_text=True)
    assert "p. 2 · #4" in fresh and "p. 3 · #3" in fresh and 'id="comment-count">(4)<' in fresh
    assert fresh.count('class="marker') == 4
    assert _after(fresh) == str(mine.id)
    for item in items:  # each comment the answer added reads the same on a fresh page
        added = re.search(rf'<li class="comment [^"]*" id="comment-{item}">.*?</li>', html, re.S)
        assert added and added.group(0) in fresh


def test_without_javascript_a_comment_posts_and_the_page_comes_back(browser, make_deliverable):
    d = make_deliverable(DeliverableState.DELIVERED)
    _open_page(browser, d.open_request)
    response = browser.post(f"{browser.review}/comments", {"body": "Plain form"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"{browser.review}#comments")
    page = browser.get(browser.review).get_data(as_text=True)
    assert "Plain form" in page and "Your comment is posted." in page
    assert 'id="comment-count">(1)<' in page


def test_after_a_client_action_commits_the_page_is_drawn_without_the_write_lock(
        browser, make_deliverable):
    """A decision's answer (the panel, the thread, the viewer) is read after the commit in
    a transaction that only reads: on SQLite it begins deferred, not IMMEDIATE, so other
    clients' posts do not queue behind the drawing; on every backend it writes nothing."""
    d = make_deliverable(DeliverableState.DELIVERED, approvers=2)
    _open_page(browser, d.open_request)
    browser.csrf_token()
    watch = _AfterCommit()
    event.listen(db.engine, "commit", watch.commit)
    event.listen(db.engine, "before_cursor_execute", watch.statement)
    try:
        response = browser.htmx_post(f"{browser.review}/decision", {"choice": "approve"})
    finally:
        event.remove(db.engine, "commit", watch.commit)
        event.remove(db.engine, "before_cursor_execute", watch.statement)
    assert response.status_code == 200 and "Approved" in response.get_data(as_text=True)
    assert watch.committed and watch.after, "the answer is read after the commit"
    heads = [s.lstrip().split(None, 1)[0].upper() for s in watch.after]
    assert "BEGIN IMMEDIATE" not in [s.strip().upper() for s in watch.after]
    assert not {"INSERT", "UPDATE", "DELETE"} & set(heads), watch.after
