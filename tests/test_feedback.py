"""Feedback across versions: a client's comment is a point that staff mark addressed in a
later version (or won't change, with a reason), that the client sees on later versions'
pages and can reopen; nothing is lost when a new version goes out."""
from __future__ import annotations

import io
import json
import re

import pytest
from sqlalchemy import select

from portal import workflow
from portal.demo.samples import sample_pdf
from portal.errors import IllegalTransition, InvalidInput, NotAllowed
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Comment,
    Deliverable,
    DeliverableState,
    Outcome,
    PointStatus,
    Policy,
    ReviewRequest,
)
from portal.workflow.comments import post_comment
from portal.workflow.feedback import reopen_point, reopen_point_by_client, resolve_point
from portal.workflow.links import issue_token
from portal.workflow.pins import Pin
from tests.conftest import future, on_screen

POINT = "The headline is too long on phones."
NOTE = "Shortened to five words."
REASON = "The legal line must stay as written."


def _words(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'").split())


def _section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    return _words(html[start:html.index("</section>", start)])


def _point_on_v1(make_deliverable) -> tuple[Deliverable, Comment]:
    d = make_deliverable(DeliverableState.DELIVERED)
    request = d.open_request
    approver = request.approvers[0]
    comment = post_comment(approver.contact, request, POINT, seen_sha256=on_screen(approver),
                           pin=Pin(page=1, x=0.5, y=0.25))
    db.session.commit()
    return d, comment


def _version_2(d: Deliverable, staff, colleague) -> ReviewRequest:
    """The client asks for changes, staff upload, review and deliver version 2."""
    approver = d.open_request.approvers[0]
    workflow.record_decision(approver, Outcome.REJECTED, "Please shorten it",
                             seen_sha256=on_screen(approver))
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf("v2")), "v2.pdf", "Shorter")
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    request = workflow.deliver(staff, d, d.project.client.contacts[:1], Policy.PARALLEL,
                               future())
    db.session.commit()
    return request


def _client_on(make_browser, request: ReviewRequest):
    browser = make_browser()
    assert browser.get(f"/r/{issue_token(request.approvers[0])}").status_code == 303
    assert browser.get(browser.review).status_code == 200
    return browser


def _staff_browser(make_browser, user):
    browser = make_browser()
    browser.login(user.email)
    return browser


def test_a_point_is_addressed_seen_by_the_client_reopened_and_open_again_for_staff(
        make_deliverable, make_browser, staff, colleague):
    d, comment = _point_on_v1(make_deliverable)
    v2_request = _version_2(d, staff, colleague)
    team = _staff_browser(make_browser, staff)

    page = team.get(f"/deliverables/{d.id}").get_data(as_text=True)
    listed = _section(page, "points")
    assert POINT in listed and "Version 1 · p. 1" in listed and "open" in listed

    response = team.post(f"/points/{comment.id}", {"status": "addressed",
                                                    "version_id": v2_request.version_id,
                                                    "note": NOTE})
    assert response.status_code == 302
    db.session.refresh(comment)
    assert comment.resolution_status == PointStatus.ADDRESSED
    assert comment.resolved_in_version_id == v2_request.version_id
    assert comment.resolved_by_id == staff.id

    client = _client_on(make_browser, v2_request)
    section = _section(client.get(client.review).get_data(as_text=True), "earlier-points")
    assert "Your points from earlier versions" in section
    assert POINT in section and "Version 1 · p. 1" in section
    assert f"addressed in version 2 {NOTE}" in section and "Reopen" in section

    response = client.post(f"{client.review}/points/{comment.id}/reopen")
    assert response.status_code == 303
    db.session.refresh(comment)
    assert comment.resolution_status == PointStatus.OPEN
    assert comment.resolved_in_version_id is None and comment.resolution_note == ""
    section = _section(client.get(client.review).get_data(as_text=True), "earlier-points")
    assert "1 open" in section and "addressed in" not in section

    listed = _section(team.get(f"/deliverables/{d.id}").get_data(as_text=True), "points")
    assert "1 open" in listed and "Mark addressed" in listed
    verbs = list(db.session.scalars(select(AuditEvent.verb).where(
        AuditEvent.verb.like("point.%")).order_by(AuditEvent.seq)))
    assert verbs == ["point.addressed", "point.reopened"]


def test_reopen_by_htmx_answers_with_the_section(make_deliverable, make_browser, staff,
                                                 colleague):
    d, comment = _point_on_v1(make_deliverable)
    v2_request = _version_2(d, staff, colleague)
    resolve_point(staff, comment, PointStatus.WONT_CHANGE, note=REASON)
    db.session.commit()
    client = _client_on(make_browser, v2_request)
    assert f"won't change Reason: {REASON}" in _section(
        client.get(client.review).get_data(as_text=True), "earlier-points")
    response = client.htmx_post(f"{client.review}/points/{comment.id}/reopen")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith("<section") and "1 open" in _words(html)


def test_wont_change_needs_a_reason(make_deliverable, make_browser, staff):
    _d, comment = _point_on_v1(make_deliverable)
    with pytest.raises(InvalidInput):
        resolve_point(staff, comment, PointStatus.WONT_CHANGE, note="  ")
    db.session.rollback()
    team = _staff_browser(make_browser, staff)
    response = team.post(f"/points/{comment.id}", {"status": "wont_change", "note": ""})
    assert response.status_code == 422
    assert "Give the reason the client will see" in response.get_data(as_text=True)
    db.session.refresh(comment)
    assert comment.resolution_status == PointStatus.OPEN


def test_addressed_needs_a_newer_version_and_a_resolved_point_is_reopened_first(
        make_deliverable, staff, colleague):
    d, comment = _point_on_v1(make_deliverable)
    with pytest.raises(InvalidInput):  # no version
        resolve_point(staff, comment, PointStatus.ADDRESSED)
    with pytest.raises(InvalidInput):  # the same version it was made on
        resolve_point(staff, comment, PointStatus.ADDRESSED, d.current_version)
    db.session.rollback()
    v2 = _version_2(d, staff, colleague).version
    resolve_point(staff, comment, PointStatus.ADDRESSED, v2)
    with pytest.raises(IllegalTransition):
        resolve_point(staff, comment, PointStatus.WONT_CHANGE, note=REASON)
    reopen_point(staff, comment)
    with pytest.raises(IllegalTransition):
        reopen_point(staff, comment)
    resolve_point(staff, comment, PointStatus.WONT_CHANGE, note=REASON)
    assert comment.resolution == f"won't change: {REASON}"


def test_only_client_comments_are_points(make_deliverable, staff):
    d = make_deliverable(DeliverableState.DELIVERED)
    note = post_comment(staff, d.open_request, "Internal only", internal=True)
    reply = post_comment(staff, d.open_request, "Our reply")
    for comment in (note, reply):
        with pytest.raises(InvalidInput):
            resolve_point(staff, comment, PointStatus.WONT_CHANGE, note=REASON)


def test_a_client_cannot_resolve_a_point(make_deliverable, make_browser, staff, colleague):
    d, comment = _point_on_v1(make_deliverable)
    v2_request = _version_2(d, staff, colleague)
    contact = v2_request.approvers[0].contact
    with pytest.raises(NotAllowed):
        resolve_point(contact, comment, PointStatus.ADDRESSED, v2_request.version)
    client = _client_on(make_browser, v2_request)
    response = client.post(f"/points/{comment.id}", {"status": "addressed",
                                                      "version_id": v2_request.version_id})
    assert response.status_code in (302, 401, 403)  # to sign-in: the route is staff only
    db.session.refresh(comment)
    assert comment.resolution_status == PointStatus.OPEN
    # and an open point has nothing to reopen
    response = client.post(f"{client.review}/points/{comment.id}/reopen")
    assert response.status_code == 409


def test_a_contact_of_another_client_cannot_reopen(make_deliverable, make_browser, staff,
                                                   colleague):
    d, comment = _point_on_v1(make_deliverable)
    v2_request = _version_2(d, staff, colleague)
    resolve_point(staff, comment, PointStatus.ADDRESSED, v2_request.version, NOTE)
    db.session.commit()
    other = make_deliverable(DeliverableState.DELIVERED)  # another client's deliverable
    stranger = other.open_request.approvers[0]
    assert stranger.contact.client_id != d.project.client_id
    with pytest.raises(NotAllowed):
        reopen_point_by_client(stranger.contact, comment, current_request=other.open_request,
                               seen_sha256=on_screen(stranger))
    db.session.rollback()
    browser = _client_on(make_browser, other.open_request)
    response = browser.post(f"{browser.review}/points/{comment.id}/reopen")
    assert response.status_code in (403, 404)
    db.session.refresh(comment)
    assert comment.resolution_status == PointStatus.ADDRESSED


def test_reopening_names_the_version_on_screen(make_deliverable, staff, colleague):
    d, comment = _point_on_v1(make_deliverable)
    v1_sha = d.current_version.sha256
    v2_request = _version_2(d, staff, colleague)
    resolve_point(staff, comment, PointStatus.ADDRESSED, v2_request.version)
    db.session.commit()
    contact = v2_request.approvers[0].contact
    with pytest.raises(Exception, match="out of date"):
        reopen_point_by_client(contact, comment, current_request=v2_request,
                               seen_sha256=v1_sha)


def test_nothing_is_lost_when_a_new_version_goes_out(make_deliverable, make_browser, staff,
                                                     colleague):
    d, _comment = _point_on_v1(make_deliverable)
    approver = d.open_request.approvers[0]
    second = post_comment(approver.contact, d.open_request, "And the footer is grey.",
                          seen_sha256=on_screen(approver))
    db.session.commit()
    v2_request = _version_2(d, staff, colleague)
    client = _client_on(make_browser, v2_request)
    section = _section(client.get(client.review).get_data(as_text=True), "earlier-points")
    assert POINT in section and "And the footer is grey." in section
    assert "2 open" in section and "Reopen" not in section
    assert db.session.get(Comment, second.id).resolution_status == PointStatus.OPEN


def test_a_german_client_reopening_leaves_the_trail_in_the_portals_language(
        make_deliverable, make_browser, staff, colleague):
    """The hash-chained trail keeps what the point was in the portal's words, never in the
    language of whoever reopened it."""
    d, comment = _point_on_v1(make_deliverable)
    v2_request = _version_2(d, staff, colleague)
    team = _staff_browser(make_browser, staff)
    assert team.post(f"/points/{comment.id}", {"status": "addressed",
                                                "version_id": v2_request.version_id,
                                                "note": NOTE}).status_code == 302
    v2_request.approvers[0].language = "de"
    db.session.commit()
    client = _client_on(make_browser, v2_request)
    assert 'lang="de"' in client.get(client.review).get_data(as_text=True)
    assert client.post(f"{client.review}/points/{comment.id}/reopen").status_code == 303
    [reopened] = db.session.scalars(select(AuditEvent).where(
        AuditEvent.verb == "point.reopened"))
    assert json.loads(reopened.detail)["was"] == f"addressed in version 2: {NOTE}"
