"""Reminders, escalation and expiry at chosen moments: silence is never approval."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from portal import workflow
from portal.extensions import db
from portal.models import (
    ApproverStatus,
    AuditEvent,
    DeliverableState,
    OutboxMessage,
    Outcome,
    Policy,
    Reminder,
    RequestStatus,
    ReviewRequest,
)
from portal.workflow import reminders
from portal.workflow.workdays import business_days_after
from tests.conftest import as_sent, on_screen

UTC_ZONE = ZoneInfo("UTC")
FRIDAY_NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _deliver_at(make_deliverable, moment: datetime, **kwargs):
    d = make_deliverable(DeliverableState.DELIVERED, **kwargs)
    request = d.open_request
    for approver in request.approvers:  # as if it went out at `moment`
        if approver.status == ApproverStatus.INVITED:
            reminders.schedule_first(approver, moment)
            approver.invited_at = moment
            approver.link_expires_at = moment + timedelta(days=request.link_ttl_days)
    request.sent_at = moment
    request.due_date = (moment + timedelta(days=14)).date()
    db.session.commit()
    return d, request


def _reminder_emails(to: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.idempotency_key.startswith("reminder:"))
    if to:
        query = query.where(OutboxMessage.to_addr == to)
    emails = [as_sent(email) for email in db.session.scalars(query.order_by(OutboxMessage.id))]
    assert all("reminder, please review" in email.subject for email in emails)
    return emails


def test_business_days_skip_the_weekend_and_land_in_office_hours():
    assert business_days_after(FRIDAY_NOON, 2, UTC_ZONE, 9) == datetime(2026, 12, 1, 9, tzinfo=UTC)
    saturday = datetime(2026, 11, 28, 15, tzinfo=UTC)
    assert business_days_after(saturday, 0, UTC_ZONE, 9) == datetime(2026, 11, 30, 9, tzinfo=UTC)
    new_york = ZoneInfo("America/New_York")
    assert business_days_after(FRIDAY_NOON, 1, new_york, 9) == \
        datetime(2026, 11, 30, 14, tzinfo=UTC)  # 09:00 in New York


def test_first_reminder_after_two_business_days_then_every_two(app, make_deliverable):
    _d, request = _deliver_at(make_deliverable, FRIDAY_NOON)
    approver = request.approvers[0]
    assert approver.next_reminder_at == datetime(2026, 12, 1, 9, tzinfo=UTC)  # Tuesday

    assert reminders.sweep(datetime(2026, 11, 30, 17, tzinfo=UTC)).reminders == 0  # Monday
    assert reminders.sweep(datetime(2026, 12, 1, 9, 1, tzinfo=UTC)).reminders == 1
    assert reminders.sweep(datetime(2026, 12, 1, 9, 2, tzinfo=UTC)).reminders == 0  # once
    db.session.refresh(approver)
    assert approver.reminders_sent == 1
    assert approver.next_reminder_at == datetime(2026, 12, 3, 9, tzinfo=UTC)  # Thursday
    [email] = _reminder_emails(approver.contact.email)
    assert "http://portal.test/r/" in email.body_text
    assert "still waiting for your decision" in email.body_text


def test_at_most_k_reminders_then_escalation_to_the_owner(app, make_deliverable, staff):
    d, request = _deliver_at(make_deliverable, FRIDAY_NOON)
    approver = request.approvers[0]
    moment = FRIDAY_NOON
    for _ in range(20):
        moment += timedelta(days=1)
        reminders.sweep(moment.replace(hour=10))
    db.session.refresh(approver)
    assert approver.reminders_sent == request.reminder_max == 5
    assert len(_reminder_emails(approver.contact.email)) == 5
    escalations = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.subject.contains("has not answered"))).all()
    assert [m.to_addr for m in escalations] == [staff.email]
    assert escalations[0].subject.startswith(f"{d.project.client.name} has not answered "
                                             f"'{d.title}' for ")
    db.session.refresh(request)
    assert request.escalated_at is not None
    assert request.status == RequestStatus.OPEN  # overdue, never approved


def test_due_date_passing_escalates_once(app, make_deliverable, staff):
    d, request = _deliver_at(make_deliverable, FRIDAY_NOON)
    request.due_date = (FRIDAY_NOON + timedelta(days=5)).date()
    db.session.commit()
    after_due = datetime.combine(request.due_date + timedelta(days=1), datetime.min.time(), UTC)
    assert reminders.sweep(after_due).escalations == 1
    assert reminders.sweep(after_due + timedelta(hours=1)).escalations == 0
    assert workflow.whose_turn(d).side == "overdue"


def test_sequential_reminds_only_whose_turn_it_is(app, make_deliverable):
    _d, request = _deliver_at(make_deliverable, FRIDAY_NOON, policy=Policy.SEQUENTIAL,
                             approvers=2)
    first, second = request.approvers
    reminders.sweep(datetime(2026, 12, 1, 10, tzinfo=UTC))
    assert len(_reminder_emails(first.contact.email)) == 1
    assert _reminder_emails(second.contact.email) == []
    assert second.next_reminder_at is None


def test_a_decision_stops_reminders_at_once(app, make_deliverable):
    _d, request = _deliver_at(make_deliverable, FRIDAY_NOON, approvers=2)
    first, second = request.approvers
    workflow.record_decision(first, Outcome.APPROVED, seen_sha256=on_screen(first))
    db.session.commit()
    reminders.sweep(datetime(2026, 12, 1, 10, tzinfo=UTC))
    assert _reminder_emails(first.contact.email) == []
    assert len(_reminder_emails(second.contact.email)) == 1


def test_cancellation_stops_reminders(app, make_deliverable, staff):
    _d, request = _deliver_at(make_deliverable, FRIDAY_NOON)
    workflow.cancel_request(staff, request)
    db.session.commit()
    assert reminders.sweep(datetime(2026, 12, 1, 10, tzinfo=UTC)).reminders == 0
    assert _reminder_emails() == []


def test_manual_nudge_counts_as_a_reminder(app, browser, make_deliverable, staff):
    _d, request = _deliver_at(make_deliverable, FRIDAY_NOON)
    approver = request.approvers[0]
    browser.login(staff.email)
    response = browser.post(f"/approvers/{approver.id}/remind")
    assert response.status_code == 302
    db.session.refresh(approver)
    assert approver.reminders_sent == 1
    assert db.session.scalar(select(Reminder.manual)) is True
    assert len(_reminder_emails(approver.contact.email)) == 1


def test_links_running_out_undecided_expire_the_request_never_approve(
        app, make_deliverable, staff):
    d, request = _deliver_at(make_deliverable, FRIDAY_NOON)
    request.reminder_max = 0  # no reminder renews the link
    db.session.commit()
    report = reminders.sweep(FRIDAY_NOON + timedelta(days=request.link_ttl_days, minutes=1))
    assert report.expired == 1
    db.session.refresh(request)
    assert request.status == RequestStatus.EXPIRED
    assert d.state == DeliverableState.READY and d.current_version.locked_at is None
    assert request.approvers[0].status == ApproverStatus.WITHDRAWN
    told = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.subject.startswith("Expired without a decision"))).all()
    assert [m.to_addr for m in told] == [staff.email]
    assert db.session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.verb == "request.expired")) == 1


def test_two_sweeps_at_once_send_each_reminder_once(app, make_deliverable, make_project):
    project = make_project()
    for _ in range(6):
        _deliver_at(make_deliverable, FRIDAY_NOON, project=project, approvers=2)
    moment = datetime(2026, 12, 1, 10, tzinfo=UTC)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def sweep_in_own_session() -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                reminders.sweep(moment)
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=sweep_in_own_session) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    db.session.expire_all()
    open_approvers = 12
    assert db.session.scalar(select(func.count(Reminder.id))) == open_approvers
    assert len(_reminder_emails()) == open_approvers
    assert db.session.scalar(select(func.count(ReviewRequest.id))) == 6


def test_reminder_policy_is_chosen_per_request(app, browser, make_deliverable, staff):
    d = make_deliverable(DeliverableState.READY)
    contact = d.project.client.contacts[0]
    browser.login(staff.email)
    form = {"contact_id": contact.id, "policy": "parallel",
            "due_date": (datetime.now(UTC).date() + timedelta(days=9)).isoformat(),
            "reminder_first": "3", "reminder_every": "4", "reminder_max": "2"}
    assert browser.post(f"/deliverables/{d.id}/deliver", form).status_code == 302
    request = db.session.scalar(select(ReviewRequest))
    assert (request.reminder_first_after_days, request.reminder_every_days,
            request.reminder_max) == (3, 4, 2)


def test_nonsense_reminder_policy_is_refused(app, browser, make_deliverable, staff):
    d = make_deliverable(DeliverableState.READY)
    browser.login(staff.email)
    form = {"contact_id": d.project.client.contacts[0].id, "policy": "parallel",
            "due_date": (datetime.now(UTC).date() + timedelta(days=9)).isoformat(),
            "reminder_first": "2", "reminder_every": "0", "reminder_max": "99"}
    response = browser.post(f"/deliverables/{d.id}/deliver", form)
    assert response.status_code == 422
    assert "Reminders: first after" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(ReviewRequest.id))) == 0


def test_a_revoked_link_stays_dead_until_staff_resend_it(app, browser, make_deliverable, staff):
    from portal.workflow.links import LinkState, check_token

    _d, request = _deliver_at(make_deliverable, FRIDAY_NOON)
    approver = request.approvers[0]
    browser.login(staff.email)
    browser.post(f"/approvers/{approver.id}/revoke")
    db.session.refresh(approver)
    assert approver.next_reminder_at is None
    assert reminders.sweep(datetime(2026, 12, 8, 10, tzinfo=UTC)).reminders == 0
    assert _reminder_emails() == []
    assert browser.post(f"/approvers/{approver.id}/remind").status_code == 409

    browser.post(f"/approvers/{approver.id}/resend")
    db.session.refresh(approver)
    assert approver.link_revoked_at is None and approver.next_reminder_at is not None
    resent = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.to_addr == approver.contact.email).order_by(OutboxMessage.id)).all()[-1]
    token = resent.body_text.split("http://portal.test/r/")[1].split()[0]
    assert check_token(token).state == LinkState.VALID
