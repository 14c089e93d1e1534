"""The metrics page: exact figures from requests with known timestamps, the trend, the
SVG charts, the client filter, htmx fragments, clear 422s, and a fixed query count."""
from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from portal import workflow
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import (
    Deliverable,
    DeliverableState,
    Outcome,
    Policy,
    RequestStatus,
    ReviewRequest,
    Role,
)
from portal.reports import metrics
from portal.workflow import workdays
from tests.conftest import future, on_screen

MARCH = "/metrics?start=2025-03-01&end=2025-03-31"
OK, WITH_CONDITIONS = RequestStatus.APPROVED, RequestStatus.APPROVED_WITH_CONDITIONS
AGES = ("0\N{EN DASH}2", "3\N{EN DASH}5", "6\N{EN DASH}10", "over 10")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def set_times(request: ReviewRequest, sent: str, closed: str | None, status: RequestStatus,
              due: str = "2025-12-31") -> ReviewRequest:
    request.sent_at, request.status = utc(sent), status
    request.closed_at = utc(closed) if closed else None
    request.due_date = date.fromisoformat(due)
    return request


def next_round(d: Deliverable, staff, colleague) -> ReviewRequest:
    """The client rejects the open request; a new version goes out through the workflow."""
    workflow.record_decision(d.open_request.approvers[0], Outcome.REJECTED, "Again",
                             seen_sha256=on_screen(d.open_request.approvers[0]))
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf("v2")), "v2.pdf", "Fixed")
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    request = workflow.deliver(staff, d, d.project.client.contacts[:1], Policy.PARALLEL, future())
    db.session.commit()
    return request


@pytest.fixture
def world(make_deliverable, make_project, make_client, staff, colleague) -> SimpleNamespace:
    """Two clients' March 2025, plus a February approval and requests still open."""
    acme, beta = make_project(make_client("Acme Corp")), make_project(make_client("Beta Ltd"))

    def delivered(project) -> Deliverable:
        return make_deliverable(DeliverableState.DELIVERED, project=project)

    d1 = delivered(acme)  # Friday noon to Tuesday noon: 2.0 days, first time, on time
    set_times(d1.open_request, "2025-03-07T12:00", "2025-03-11T12:00", OK, "2025-03-12")
    d2 = delivered(acme)  # rejected first, approved in round 2 after 5.25 days, late
    first = d2.open_request
    second = next_round(d2, staff, colleague)
    set_times(first, "2025-03-03T09:00", "2025-03-05T09:00", RequestStatus.CHANGES_REQUESTED)
    set_times(second, "2025-03-10T09:00", "2025-03-17T15:00", OK, "2025-03-14")
    d3 = delivered(beta)  # six hours on a Monday, with conditions, late
    set_times(d3.open_request, "2025-03-17T09:00", "2025-03-17T15:00", WITH_CONDITIONS,
              "2025-03-14")
    d4 = delivered(acme)  # February: outside March
    set_times(d4.open_request, "2025-02-17T09:00", "2025-02-20T09:00", OK, "2025-02-21")
    d5 = delivered(beta)  # still open: 7.6 business days old on 1 April
    set_times(d5.open_request, "2025-03-20T09:00", None, RequestStatus.OPEN)
    d6 = delivered(acme)  # sent in March, approved in April: open at the end of March
    set_times(d6.open_request, "2025-03-26T12:00", "2025-04-02T12:00", OK, "2025-04-30")
    db.session.commit()
    return SimpleNamespace(acme=acme.client, beta=beta.client)


def march(client_id: int | None = None, group=metrics.Grouping.WEEK) -> metrics.Period:
    return metrics.Period(date(2025, 3, 1), date(2025, 3, 31), client_id, group)


NOW = utc("2026-01-15T10:00")


# --- business time ---------------------------------------------------------------------

def test_business_days_skip_the_weekend():
    assert workdays.business_days(utc("2025-03-07T12:00"), utc("2025-03-11T12:00")) == 2.0
    assert workdays.business_days(utc("2025-03-17T09:00"), utc("2025-03-17T15:00")) == 0.25
    assert workdays.business_days(utc("2025-03-08T10:00"), utc("2025-03-09T20:00")) == 0.0
    assert workdays.business_days(utc("2025-03-08T10:00"), utc("2025-03-10T12:00")) == 0.5
    assert workdays.business_days(utc("2025-03-03T00:00"), utc("2025-03-17T00:00")) == 10.0
    assert workdays.business_days(utc("2025-03-11T12:00"), utc("2025-03-07T12:00")) == 0.0


def test_business_days_follow_the_clients_time_zone():
    # Friday 23:00 UTC is 18:00 in New York; Monday 13:00 UTC is 09:00 there (after DST).
    sent, approved = utc("2025-03-07T23:00"), utc("2025-03-10T13:00")
    assert workdays.business_days(sent, approved, ZoneInfo("America/New_York")) == 0.625
    assert round(workdays.business_days(sent, approved), 4) == round(14 / 24, 4)


# --- the figures -------------------------------------------------------------------------

def test_overall_figures_are_exact(world):
    report = metrics.report(march(), NOW)
    s = report.overall
    assert s.approvals == 3
    assert s.average_days == pytest.approx(2.5)  # (2.0 + 5.25 + 0.25) / 3
    assert s.median_days == pytest.approx(2.0)
    assert (s.first_pass.hits, s.first_pass.total, s.first_pass.percent) == (2, 3, 67)
    assert s.approved_deliverables == 3
    assert s.average_rounds == pytest.approx(4 / 3)
    assert s.rounds == (("1", 2), ("2", 1), ("3", 0), ("4+", 0))
    assert (s.on_time.hits, s.on_time.total, s.on_time.percent) == (1, 3, 33)
    assert report.open_ages.at == utc("2025-04-01T00:00")
    assert report.open_ages.buckets == tuple(zip(AGES, (0, 1, 1, 0), strict=True))


def test_figures_per_client(world):
    acme = metrics.report(march(world.acme.id), NOW)
    assert acme.overall.approvals == 2
    assert acme.overall.average_days == pytest.approx(3.625)
    assert acme.overall.median_days == pytest.approx(3.625)
    assert acme.overall.first_pass.percent == 50
    assert acme.overall.average_rounds == pytest.approx(1.5)
    assert (acme.overall.on_time.hits, acme.overall.on_time.total) == (1, 2)
    assert acme.open_ages.total == 1
    beta = metrics.report(march(world.beta.id), NOW).overall
    assert (beta.approvals, beta.median_days, beta.first_pass.percent) == (1, 0.25, 100)
    assert beta.on_time.percent == 0
    everyone = metrics.report(march(), NOW).clients
    assert [(c.name, c.summary.approvals, c.open_requests) for c in everyone] == [
        ("Acme Corp", 2, 1), ("Beta Ltd", 1, 1)]


def test_weekly_and_monthly_trend(world):
    weeks = metrics.report(march(), NOW).trend
    assert [p.start for p in weeks] == [date(2025, 2, 24) + timedelta(weeks=n) for n in range(6)]
    assert [p.summary.approvals for p in weeks] == [0, 0, 1, 2, 0, 0]
    assert [p.summary.first_pass.percent for p in weeks] == [None, 0, 100, 100, None, None]
    assert weeks[3].summary.average_days == pytest.approx(2.75)
    assert weeks[1].name == "week of 3 Mar 2025"
    period = metrics.Period(date(2025, 2, 1), date(2025, 3, 31), group=metrics.Grouping.MONTH)
    months = metrics.report(period, NOW).trend
    assert [(p.label, p.summary.approvals) for p in months] == [("Feb 2025", 1),
                                                                ("Mar 2025", 3)]
    assert months[0].summary.average_days == 3.0


def test_open_requests_by_age(make_deliverable):
    now = utc("2025-03-19T12:00")  # a Wednesday
    # Ages 0 and 2 (0-2), 3 (3-5), 10 (6-10), 11 (over 10) in whole business days.
    for sent in ("2025-03-19T11:00", "2025-03-17T12:00", "2025-03-14T12:00", "2025-03-05T12:00",
                 "2025-03-04T12:00"):
        set_times(make_deliverable(DeliverableState.DELIVERED).open_request, sent, None,
                  RequestStatus.OPEN)
    cancelled = make_deliverable(DeliverableState.DELIVERED).open_request
    set_times(cancelled, "2025-03-03T12:00", "2025-03-18T12:00", RequestStatus.CANCELLED)
    db.session.commit()
    period = metrics.Period(date(2025, 3, 1), date(2025, 3, 19))
    ages = metrics.report(period, now).open_ages
    assert ages.at == now
    assert ages.buckets == tuple(zip(AGES, (2, 1, 1, 1), strict=True))
    assert sorted(r.age for r in metrics.open_requests(None, now)) == [0, 2, 3, 10, 11]


def test_an_empty_period_has_no_figures(app):
    report = metrics.report(march(), NOW)
    assert report.overall.approvals == 0 and report.overall.average_days is None
    assert report.overall.first_pass.percent is None and report.clients == ()


# --- the page ----------------------------------------------------------------------------

def section(html: str, name: str) -> str:
    match = re.search(rf'<section class="metric" id="metric-{name}">(.*?)</section>', html, re.S)
    assert match, f"no {name} figure on the page"
    return re.sub(r"\s+", " ", match.group(1))


def test_page_shows_the_figures_charts_and_definitions(browser, staff, world):
    browser.login(staff.email)
    response = browser.get(MARCH)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<p class="figure">2.5</p>' in section(html, "time")
    assert "median <strong>2.0</strong> · 3 approvals" in section(html, "time")
    assert "67%" in section(html, "first-pass") and "2 of 3" in section(html, "first-pass")
    assert '<p class="figure">1.3</p>' in section(html, "rounds")
    assert "33%" in section(html, "on-time") and "1 of 3" in section(html, "on-time")
    assert '<p class="figure">2</p>' in section(html, "open")
    assert "Monday\N{EN DASH}Friday" in section(html, "time")  # definitions are on the page
    assert "first review request" in section(html, "first-pass")
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
    assert len(svgs) == 6  # four trend charts, rounds and ages
    for svg in svgs:
        assert re.search(r'<svg[^>]*role="img"[^>]*>\s*<title id=', svg)
        assert "<rect" in svg or "<polyline" in svg
    assert "<title>week of 17 Mar 2025: 2 approvals</title>" in html
    assert f"<title>{AGES[2]} business days old: 1 open request</title>" in html
    assert ">Acme Corp</a>" in html and ">Beta Ltd</a>" in html  # the per-client table
    assert " style=" not in html  # the CSP forbids inline styles…
    assert all('src="' in tag for tag in re.findall(r"<script\b[^>]*>", html))  # …and scripts
    assert 'href="/metrics">Metrics</a>' in html


def test_the_client_filter_changes_the_figures(browser, staff, world):
    browser.login(staff.email)
    html = browser.get(f"{MARCH}&client={world.acme.id}").get_data(as_text=True)
    assert '<p class="figure">3.6</p>' in section(html, "time")
    assert "median <strong>3.6</strong> · 2 approvals" in section(html, "time")
    assert "50%" in section(html, "first-pass") and "1 of 2" in section(html, "first-pass")
    assert '<p class="figure">1.5</p>' in section(html, "rounds")
    assert '<p class="figure">1</p>' in section(html, "open")
    assert f'<option value="{world.acme.id}" selected>Acme Corp</option>' in html
    assert "By client" not in html
    beta = browser.get(f"{MARCH}&client={world.beta.id}").get_data(as_text=True)
    assert "100%" in section(beta, "first-pass") and "0%" in section(beta, "on-time")


def test_htmx_gets_only_the_results_block(browser, staff, world):
    browser.login(staff.email)
    response = browser.get(f"{MARCH}&group=month", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    html = response.get_data(as_text=True).strip()
    assert html.startswith('<div id="metrics-results"') and html.endswith("</div>")
    assert "<html" not in html and "<form" not in html and "<nav" not in html
    assert "Trend by month" in html and html.count("<svg") == 6
    full = browser.get(MARCH)
    assert "HX-Request" in full.headers["Vary"] and "<form" in full.get_data(as_text=True)


def test_going_back_restores_the_whole_page(browser, staff, world):
    """With historyCacheSize 0, htmx reloads a page it pushed with HX-Request set; that
    answer replaces the whole body, so it must be the whole page."""
    browser.login(staff.email)
    response = browser.get(MARCH, headers={"HX-Request": "true",
                                           "HX-History-Restore-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<form" in html and 'class="topbar"' in html
    assert {"HX-Request", "HX-History-Restore-Request"} <= set(response.vary)


def test_the_form_works_without_javascript(browser, staff, world):
    browser.login(staff.email)
    html = browser.get("/metrics").get_data(as_text=True)
    form = re.search(r"<form class=\"filters\".*?</form>", html, re.S).group(0)
    assert 'method="get"' in form and 'action="/metrics"' in form
    assert 'hx-push-url="true"' in form and 'hx-target="#metrics-results"' in form
    assert '<noscript><button type="submit">' in form
    today = datetime.now(UTC).date()
    assert f'name="start" value="{(today - timedelta(days=89)).isoformat()}"' in form
    assert f'name="end" value="{today.isoformat()}"' in form


@pytest.mark.parametrize(("query", "message"), [
    ("start=2025-02-30", "The start date must be a date like 2026-12-31."),
    ("end=31/03/2025", "The end date must be a date like 2026-12-31."),
    ("start=2025-04-01&end=2025-03-01",
     "The start date (2025-04-01) must be on or before the end date (2025-03-01)."),
    ("start=2020-01-01&end=2025-03-01", "Choose a period of at most three years."),
    ("group=year", "Group the trend by week or by month."),
    ("client=999999", "There is no such client; choose one from the list."),
    ("client=acme", "There is no such client; choose one from the list."),
])
def test_bad_input_is_a_clear_422(browser, staff, query, message):
    browser.login(staff.email)
    response = browser.get(f"/metrics?{query}")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'<p class="error" role="alert">{message}</p>' in html
    assert "<form" in html  # the page stays usable: the form to correct it is there
    fragment = browser.get(f"/metrics?{query}", headers={"HX-Request": "true"})
    assert fragment.status_code == 422 and message in fragment.get_data(as_text=True)
    assert "<form" not in fragment.get_data(as_text=True)


def test_every_signed_in_role_may_read_it(browser, make_user, world):
    assert browser.get(MARCH).status_code == 302  # signed out: to the login page
    for role in Role:
        browser.login(make_user(role).email)
        assert browser.get(MARCH).status_code == 200, role


def test_query_count_does_not_grow_with_requests(report, browser, staff, world, make_deliverable,
                                                 count_queries):
    browser.login(staff.email)

    def page_queries() -> int:
        browser.get(MARCH)  # warm up
        with count_queries() as counter:
            assert browser.get(MARCH).status_code == 200
        return counter.count

    few = page_queries()
    for n in range(6):
        request = make_deliverable(DeliverableState.DELIVERED).open_request
        closed = None if n % 3 == 0 else f"2025-03-{20 + n}T15:00"
        set_times(request, f"2025-03-{10 + n}T09:00", closed,
                  RequestStatus.OPEN if closed is None else OK)
    db.session.commit()
    assert metrics.report(march(), NOW).overall.approvals == 7
    many = page_queries()
    report(f"metrics page: {few} queries")
    assert many == few
    assert few <= 6
