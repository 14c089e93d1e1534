"""The staff dashboard: mine or everyone's, work waiting for staff to move it, and rows
marked with client comments the signed-in person has not seen yet."""
from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import CommentSeenMark, Deliverable, DeliverableState, Role, User, utcnow
from portal.workflow.comments import post_comment
from portal.workflow.seen import mark_seen, unseen
from tests.conftest import on_screen

S = DeliverableState


def _section(html: str, key: str) -> str:
    start = html.index(f'id="section-{key}"')
    return html[start:html.index("</section>", start)]


def _titled(d: Deliverable, title: str) -> Deliverable:
    d.title = title
    db.session.commit()
    return d


def _client_comments(d: Deliverable, n: int, text: str = "Client says") -> list[int]:
    request = d.open_request
    approver = request.approvers[0]
    ids = [post_comment(approver.contact, request, f"{text} {i}",
                        seen_sha256=on_screen(approver)).id for i in range(n)]
    db.session.commit()
    return ids


def _row(html: str, title: str) -> str:
    """The table row of the deliverable with this title (the first one on the page)."""
    at = html.index(f">{title}</a>")
    return html[html.rindex("<tr", 0, at):html.index("</tr>", at)]


def _marks(person: User | None = None) -> list[tuple[int, int, int]]:
    """The seen marks in the database (of one person, or everyone's)."""
    query = select(CommentSeenMark).order_by(CommentSeenMark.id)
    if person is not None:
        query = query.where(CommentSeenMark.user_id == person.id)
    return [(m.user_id, m.deliverable_id, m.comment_id) for m in db.session.scalars(query)]


# --- mine or everyone's -------------------------------------------------------------------

def test_mine_is_the_default_and_everyone_shows_the_whole_agency(browser, make_deliverable,
                                                                 make_project, make_user,
                                                                 staff):
    olive = make_user(Role.STAFF, name="Olive Other")
    _titled(make_deliverable(S.DRAFT), "Sam brochure")
    _titled(make_deliverable(S.DRAFT, project=make_project(owner=olive)), "Olive poster")
    browser.login(staff.email)

    mine = browser.get("/").get_data(as_text=True)
    assert "Sam brochure" in _section(mine, "to_move")
    assert "Olive poster" not in mine
    assert re.search(r'href="/\?scope=mine" aria-current="page">Mine<', mine)
    assert 'aria-current="page">Everyone' not in mine
    assert "Waiting for you to move it" in mine

    everyone = browser.get("/?scope=everyone").get_data(as_text=True)
    moving = _section(everyone, "to_move")
    assert "Sam brochure" in moving and "Olive poster" in moving
    assert re.search(r'href="/\?scope=everyone" aria-current="page">Everyone', everyone)
    assert "Waiting for the team to move it" in everyone
    # An unknown choice is the default, not an error.
    assert "Olive poster" not in browser.get("/?scope=nonsense").get_data(as_text=True)


def test_mine_includes_what_i_must_review(make_browser, make_deliverable, make_project,
                                          make_user, colleague):
    """Cora reviews work Olive owns: it is Cora's under "mine", in review and once ready."""
    olive = make_user(Role.STAFF, name="Olive Other")
    project = make_project(owner=olive)
    _titled(make_deliverable(S.IN_REVIEW, project=project), "Review me")
    _titled(make_deliverable(S.READY, project=project), "Reviewed by me")
    _titled(make_deliverable(S.DRAFT, project=project), "Not mine at all")
    cora = make_browser()
    cora.login(colleague.email)
    board = cora.get("/").get_data(as_text=True)
    assert "Review me" in _section(board, "my_reviews")
    assert "Reviewed by me" in _section(board, "to_move")
    assert "Not mine at all" not in board


def test_drafts_and_ready_versions_wait_for_someone_to_move_them(browser, make_deliverable,
                                                                 staff):
    _titled(make_deliverable(S.DRAFT, with_version=False), "No file yet")
    _titled(make_deliverable(S.DRAFT), "Draft with a file")
    _titled(make_deliverable(S.READY), "Reviewed, not sent")
    _titled(make_deliverable(S.IN_REVIEW), "Being reviewed")
    _titled(make_deliverable(S.DELIVERED), "With the client")
    browser.login(staff.email)
    board = browser.get("/").get_data(as_text=True)
    moving = _section(board, "to_move")
    for title in ("No file yet", "Draft with a file", "Reviewed, not sent"):
        assert title in moving
    for title in ("Being reviewed", "With the client"):
        assert title not in moving
    # Each row says whose move it is and what the move is.
    assert "Sam Staff: upload and submit for review" in _row(moving, "No file yet")
    assert "Sam Staff: deliver to the client" in _row(moving, "Reviewed, not sent")
    assert '<span class="count">3</span>' in moving


# --- client comments not seen yet -----------------------------------------------------

def test_rows_show_client_comments_each_person_has_not_seen(make_browser, make_deliverable,
                                                           make_user, staff, colleague):
    d = _titled(make_deliverable(S.DELIVERED), "Landing page")
    sam, cora = make_browser(), make_browser()
    sam.login(staff.email)
    cora.login(colleague.email)
    assert "new client comment" not in sam.get("/").get_data(as_text=True)

    ids = _client_comments(d, 2)
    # Staff's notes never make a row new (not for them, not for anyone).
    post_comment(make_user(Role.STAFF), d.open_request, "Team note", internal=True)
    db.session.commit()
    row = _row(sam.get("/").get_data(as_text=True), "Landing page")
    assert "2 new client comments" in row and 'class="badge unseen"' in row
    assert "2 new client comments" in _row(
        cora.get("/?scope=everyone").get_data(as_text=True), "Landing page")
    assert "2 new client comments" in _row(sam.get("/deliverables").get_data(as_text=True),
                                           "Landing page")

    # Opening the page (a GET) writes nothing: the page's beacon does, by POST.
    page = sam.get(f"/deliverables/{d.id}").get_data(as_text=True)
    assert "2 new client comments" in page
    assert f'href="#comment-{ids[0]}"' in page
    assert page.count('<span class="badge unseen">new</span>') == 2  # each in the thread
    assert f'name="up_to" value="{ids[1]}"' in page and 'hx-trigger="load, submit"' in page
    assert _marks(staff) == []
    answer = sam.htmx_post(f"/deliverables/{d.id}/seen", {"up_to": str(ids[1])})
    assert answer.status_code == 200 and "Marked as read." in answer.get_data(as_text=True)
    assert _marks(staff) == [(staff.id, d.id, ids[1])]

    assert "new client comment" not in sam.get("/").get_data(as_text=True)
    assert "new client comment" not in sam.get(f"/deliverables/{d.id}").get_data(as_text=True)
    assert "2 new client comments" in _row(
        cora.get("/?scope=everyone").get_data(as_text=True), "Landing page")

    (newer,) = _client_comments(d, 1, "One more")
    assert "1 new client comment<" in _row(sam.get("/").get_data(as_text=True), "Landing page")
    page = sam.get(f"/deliverables/{d.id}").get_data(as_text=True)
    new = re.findall(r'id="comment-(\d+)">\s*<p class="meta">.*?badge unseen">new<', page)
    assert new == [str(newer)]  # only the newest is marked new now


def test_marking_stops_at_what_the_page_showed_and_never_goes_back(browser, make_deliverable,
                                                                   staff):
    d = make_deliverable(S.DELIVERED)
    first, second, third = _client_comments(d, 3)
    browser.login(staff.email)
    browser.htmx_post(f"/deliverables/{d.id}/seen", {"up_to": str(second)})
    assert unseen(staff, [d.id])[d.id].count == 1  # the third came after the page loaded
    assert unseen(staff, [d.id])[d.id].first_id == third
    browser.htmx_post(f"/deliverables/{d.id}/seen", {"up_to": str(first)})  # a stale tab
    assert _marks() == [(staff.id, d.id, second)]
    browser.htmx_post(f"/deliverables/{d.id}/seen", {"up_to": str(third + 1000)})
    assert _marks() == [(staff.id, d.id, third)]  # never past the newest client comment


def test_mark_as_read_works_without_javascript(browser, make_deliverable, staff):
    d = make_deliverable(S.DELIVERED)
    (only,) = _client_comments(d, 1)
    browser.login(staff.email)
    page = browser.get(f"/deliverables/{d.id}").get_data(as_text=True)
    assert "1 new client comment<" in page and ">Mark as read</button>" in page
    response = browser.post(f"/deliverables/{d.id}/seen", {"up_to": str(only)})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/deliverables/{d.id}")
    after = browser.get(f"/deliverables/{d.id}").get_data(as_text=True)
    assert "Marked as read." in after and "new client comment" not in after


def test_replying_marks_the_comments_seen(make_browser, make_deliverable, staff, colleague):
    d = make_deliverable(S.DELIVERED)
    _client_comments(d, 2)
    sam, cora = make_browser(), make_browser()
    sam.login(staff.email)
    cora.login(colleague.email)
    response = sam.post(f"/requests/{d.open_request.id}/comments", {"body": "On it."})
    assert response.status_code == 302
    assert "new client comment" not in sam.get("/").get_data(as_text=True)
    # Sam's reply is not news for Cora: she still has just the client's two.
    assert "2 new client comments" in _row(cora.get("/?scope=everyone").get_data(as_text=True),
                                           d.title)


def test_mark_seen_refuses_the_signed_out_and_a_missing_mark(app, browser, make_deliverable,
                                                            staff):
    d = make_deliverable(S.DELIVERED)
    (only,) = _client_comments(d, 1)
    signed_out = browser.post(f"/deliverables/{d.id}/seen", {"up_to": str(only)})
    assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
    browser.login(staff.email)
    missing = browser.post(f"/deliverables/{d.id}/seen", {})
    assert missing.status_code == 422 and "did not say which comments" in \
        missing.get_data(as_text=True)
    assert browser.post("/deliverables/999999/seen", {"up_to": "1"}).status_code == 404
    assert _marks() == []


def test_two_tabs_marking_at_once_leave_one_mark(app, make_deliverable, staff):
    """The upsert: the same person and deliverable from two transactions at once."""
    d = make_deliverable(S.DELIVERED)
    ids = _client_comments(d, 2)
    deliverable_id, user_id = d.id, staff.id
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def tab(up_to: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)  # before either begins a transaction
                user = db.session.get(User, user_id)
                mark_seen(user, deliverable_id, utcnow(), up_to)
                db.session.commit()
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                db.session.remove()

    db.session.commit()
    threads = [threading.Thread(target=tab, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert _marks() == [(user_id, deliverable_id, ids[1])]


@pytest.mark.parametrize("scope", ["", "?scope=everyone"])
def test_dashboard_get_writes_nothing(browser, make_deliverable, staff, scope):
    d = make_deliverable(S.DELIVERED)
    _client_comments(d, 1)
    browser.login(staff.email)
    response = browser.get(f"/{scope}")
    assert response.status_code == 200 and "1 new client comment" in response.get_data(
        as_text=True)
    assert _marks() == []


def test_mark_seen_needs_the_form_token(app, browser, make_deliverable, staff):
    """Another site cannot mark someone's comments read: the POST needs the CSRF token."""
    d = make_deliverable(S.DELIVERED)
    (only,) = _client_comments(d, 1)
    browser.login(staff.email)
    forged = browser.client.post(f"/deliverables/{d.id}/seen", data={"up_to": str(only)})
    assert forged.status_code == 400
    assert _marks() == []
