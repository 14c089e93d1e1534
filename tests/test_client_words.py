"""What a client reads: times in their own zone (pages and emails), and plain words for
where each approver stands, never the stored status or a bare hash."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.local_time import format_when, zone_names
from portal.models import AuditEvent, Client, Decision, DeliverableState, Policy, Role
from portal.reports.review_page import standing
from portal.workflow.links import issue_token

S = DeliverableState
TIME_TAG = re.compile(r'<time datetime="([^"]+)">([^<]+)</time>')


def test_times_read_as_a_person_says_them_in_the_zone_asked_for():
    moment = datetime(2026, 12, 1, 13, 5, tzinfo=UTC)
    assert format_when(moment) == "Tue 1 Dec 2026, 13:05 UTC"
    assert format_when(moment, ZoneInfo("Europe/Paris")) == "Tue 1 Dec 2026, 14:05 CET"
    assert format_when(moment, ZoneInfo("America/New_York")) == "Tue 1 Dec 2026, 08:05 EST"
    assert format_when(moment, ZoneInfo("Asia/Dubai")) == "Tue 1 Dec 2026, 17:05 UTC+04"
    summer = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    assert format_when(summer, ZoneInfo("Europe/Paris")) == "Thu 2 Jul 2026, 01:30 CEST"
    assert "Europe/Paris" in zone_names() and "UTC" in zone_names()
    assert "Mars/Olympus" not in zone_names()


@pytest.fixture
def paris(browser, staff, make_client, make_project) -> tuple[Client, Any]:
    """A client in Paris, set the way staff set it: on the client page."""
    client = make_client("Maison Dupont")
    browser.login(staff.email)
    saved = browser.post(f"/clients/{client.id}/timezone", {"timezone": "Europe/Paris"},
                         follow_redirects=True)
    assert "now shown in Europe/Paris" in saved.get_data(as_text=True)
    return client, make_project(client)


def test_staff_choose_a_real_zone_for_the_client(app, browser, staff, make_client):
    client = make_client()
    browser.login(staff.email)
    page = browser.get(f"/clients/{client.id}").get_data(as_text=True)
    assert '<option value="Europe/Paris">Europe/Paris</option>' in page
    assert '<option value="America/Port_of_Spain">America/Port of Spain</option>' in page
    for bad in ("Mars/Olympus", "", "Europe/Paris<script>"):
        refused = browser.post(f"/clients/{client.id}/timezone", {"timezone": bad})
        assert refused.status_code == 422, bad
        assert "time zone from the list" in refused.get_data(as_text=True)
    db.session.refresh(client)
    assert client.timezone == "UTC"
    browser.post(f"/clients/{client.id}/timezone", {"timezone": "Asia/Tokyo"})
    db.session.refresh(client)
    assert client.timezone == "Asia/Tokyo"
    [event] = db.session.scalars(select(AuditEvent).where(
        AuditEvent.verb == "client.timezone")).all()
    assert '"timezone":"Asia/Tokyo"' in event.detail


def test_a_clients_page_shows_times_in_their_zone_and_staff_pages_in_utc(
        app, paris, make_deliverable, make_browser, browser):
    client, project = paris
    d = make_deliverable(S.APPROVED, project=project)
    decision = db.session.scalars(select(Decision)).one()
    approver = decision.approver

    reader = make_browser()
    reader.get(f"/r/{issue_token(approver)}")
    page = reader.get(reader.review).get_data(as_text=True)
    paris_time = format_when(decision.at, ZoneInfo("Europe/Paris"))
    assert re.search(r"CES?T$", paris_time)
    assert (decision.at.isoformat(), paris_time) in TIME_TAG.findall(page)
    assert " UTC</time>" not in page

    staff_page = browser.get(f"/clients/{client.id}").get_data(as_text=True)
    assert (decision.at.isoformat(), format_when(decision.at)) in TIME_TAG.findall(staff_page)
    assert d.state == S.APPROVED


def test_a_comment_posted_with_htmx_comes_back_in_the_clients_zone(
        app, paris, make_deliverable, make_browser):
    _, project = paris
    d = make_deliverable(S.DELIVERED, project=project)
    reader = make_browser()
    reader.get(f"/r/{issue_token(d.open_request.approvers[0])}")
    reader.get(reader.review)
    fragment = reader.htmx_post(f"{reader.review}/comments", {"body": "Bigger logo"})
    times = TIME_TAG.findall(fragment.get_data(as_text=True))
    assert times and all(re.search(r"CES?T$", shown) for _, shown in times)


def test_emails_to_the_client_are_in_their_zone_and_to_staff_in_utc(
        app, paris, make_deliverable, staff):
    from portal.models import OutboxMessage
    from portal.notifications.compose import recipient_zone
    _, project = paris
    d = make_deliverable(S.APPROVED, project=project)
    approver = d.versions[0].requests[0].approvers[0]
    mail = {m.idempotency_key.split(":")[0]: m for m in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.to_addr == approver.contact.email))}
    paris_zone = ZoneInfo("Europe/Paris")
    until = format_when(approver.link_expires_at, paris_zone)
    [invite] = [m for k, m in mail.items() if k.startswith("invite")]
    assert f"It works until {until}" in invite.body_text
    assert f">{until}</time>" in invite.body_html
    decided = format_when(approver.decision.at, paris_zone)
    assert f"UTC ({decided})" in mail["receipt"].body_text
    # The one rule compose() applies: the client's contacts read their zone, staff UTC.
    assert recipient_zone(approver.contact.email, d.id) == paris_zone
    assert recipient_zone(staff.email, d.id) == ZoneInfo("UTC")
    assert recipient_zone(approver.contact.email, None) == ZoneInfo("UTC")


def test_the_approver_list_says_where_each_person_stands_in_plain_words(
        app, make_deliverable, make_browser):
    d = make_deliverable(S.DELIVERED, policy=Policy.SEQUENTIAL, approvers=2)
    first, second = d.open_request.approvers
    jane, john = first.contact.name, second.contact.name

    def approver_list(approver) -> str:
        reader = make_browser()
        reader.get(f"/r/{issue_token(approver)}")
        page = reader.get(reader.review).get_data(as_text=True)
        start = page.index('<ul class="approver-list">')
        return re.sub(r"\s+", " ", page[start:page.index("</ul>", start)])

    as_first = approver_list(first)
    assert f"{jane} (you) — Waiting for you" in as_first and f"{john} — After you" in as_first
    as_second = approver_list(second)
    assert f"{jane} — Deciding now" in as_second and f"{john} (you) — After {jane}" in as_second
    for jargon in ("invited", "queued"):
        assert jargon not in as_first + as_second

    reader = make_browser()
    reader.get(f"/r/{issue_token(first)}")
    reader.get(reader.review)
    reader.post(f"{reader.review}/decision", {"choice": "approve", "confirm": "1"})
    page = reader.get(reader.review).get_data(as_text=True)
    assert f"{jane} (you) — Approved" in page
    assert f"{john} — Waiting for their decision" not in page  # (said "Deciding now")
    assert f"{john} — Deciding now" in page
    # The file's fingerprint is there for whoever wants it, folded away.
    sha = db.session.scalars(select(Decision)).one().version_sha256
    fingerprint = page[page.index('<details class="fingerprint'):]
    assert sha in fingerprint[:fingerprint.index("</details>")]
    assert "sha256 " not in page


def test_withdrawn_approvers_are_told_why_in_words(app, make_deliverable, staff):
    from portal.workflow.closing import cancel_request
    d = make_deliverable(S.DELIVERED, approvers=2)
    first, second = d.open_request.approvers
    assert standing(first, second) == "Deciding now"
    cancel_request(staff, d.open_request)
    db.session.commit()
    db.session.refresh(first)
    assert standing(first, second) == "Request withdrawn by the team"


def test_finance_sees_no_zone_setting_form(app, make_browser, make_user, make_client):
    client = make_client()
    reader = make_browser()
    reader.login(make_user(Role.FINANCE).email)
    page = reader.get(f"/clients/{client.id}").get_data(as_text=True)
    assert 'name="timezone"' not in page and "UTC" in page
