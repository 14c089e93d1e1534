"""The dashboard answers in a small, fixed number of statements, mine or everyone's: one
finds every section's rows and loads them, one loads what their rows show of versions,
requests and approvers; no lazy load per row."""
from __future__ import annotations

import io

import pytest
from sqlalchemy import event

from portal import workflow
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import DeliverableState, User
from portal.reports import board
from portal.workflow.comments import post_comment
from tests.conftest import on_screen

# The sections and their rows, versions with requests and approvers, the unseen client
# comments, the open conditions, and the signed-in person: the page's whole cost.
PAGE_STATEMENTS = 5


def _every_state(make_deliverable) -> None:
    """A deliverable in each state, each open request with a client comment."""
    for state in DeliverableState:
        d = make_deliverable(state, approvers=2)
        if d.open_request:
            approver = d.open_request.approvers[0]
            post_comment(approver.contact, d.open_request, "New", seen_sha256=on_screen(approver))
    db.session.commit()


@pytest.mark.parametrize("scope", ["", "?scope=everyone"])
def test_dashboard_statements_are_few_and_fixed(report, browser, count_queries,
                                                make_deliverable, staff, scope):
    browser.login(staff.email)

    def page() -> tuple[int, str]:
        with count_queries() as counter:
            html = browser.get(f"/{scope}").get_data(as_text=True)
        return counter.count, html

    _every_state(make_deliverable)
    few, html = page()
    assert "new client comment" in html and "open condition" in html
    for _ in range(3):
        _every_state(make_deliverable)
    many, _ = page()
    report(f"GET /{scope}: {few} statements with 7 rows, {many} with 28")
    begin = db.engine.dialect.name == "sqlite"  # the app's SQLite engine sends BEGIN itself
    assert few == many == PAGE_STATEMENTS + begin


def test_sections_are_found_and_loaded_in_two_statements(make_deliverable, staff):
    _every_state(make_deliverable)
    for everyone in (False, True):
        db.session.expire_all()
        person = db.session.get(User, staff.id)  # loaded before counting
        sent: list[str] = []

        def record(_conn, _cursor, statement: str, *_: object, sent=sent) -> None:
            sent.append(" ".join(statement.split())[:120])
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            sections = board.attention(person, everyone=everyone)
            shown = [(d.title, d.project.client.name, d.owner.name, d.current_version,
                      [a.contact.name for r in d.requests for a in r.approvers])
                     for rows in sections.values() for d in rows]
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        assert len(sent) == 2, sent
        assert len(shown) >= len(DeliverableState)


def test_a_section_shows_its_first_ten_in_order(make_deliverable, staff):
    rows = [make_deliverable(DeliverableState.CHANGES_REQUESTED) for _ in range(12)]
    rejected = board.attention(staff)["rejected"]
    assert rejected == sorted(rows, key=lambda d: (d.last_activity_at, d.id))[:10]


def test_unassigned_reviews_skip_the_uploader_in_the_query(make_project, staff, colleague):
    """Anyone but the uploader may take an unassigned review: the person's own uploads are
    left out before the ten are chosen, so they cannot crowd the others out."""
    def unassigned(uploader, n: int) -> list:
        made = []
        for i in range(n):
            d = workflow.create_deliverable(uploader, make_project(owner=uploader),
                                            f"By {uploader.name} {i}", "", None)
            workflow.upload_version(uploader, d, io.BytesIO(sample_pdf("x")), "x.pdf", "")
            workflow.submit_for_review(uploader, d, None)
            made.append(d)
        db.session.commit()
        return made

    others = unassigned(colleague, 2)
    unassigned(staff, board.SECTION_SIZE)  # older than none of the others: first in order
    for d in others:  # the colleague's waited less long
        d.last_activity_at = d.last_activity_at.replace(year=d.last_activity_at.year + 1)
    db.session.commit()
    assert board.attention(staff)["my_reviews"] == others
    assert all(d.current_version.uploaded_by_id == staff.id
               for d in board.attention(colleague)["my_reviews"])
    # A second version by someone else makes it theirs to skip, not the first uploader's.
    d = others[0]
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf("y")), "y.pdf", "")
    workflow.submit_for_review(staff, d, None)
    db.session.commit()
    assert d not in board.attention(staff)["my_reviews"]
