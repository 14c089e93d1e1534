"""A reminder queued by the sweep but no longer needed when the send job reaches it (the
request closed, the approver decided or left, the link was revoked) is not sent: the row
ends skipped, saying why, and is no delivery problem. A reminder still needed goes out."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    ApproverStatus,
    DeliverableState,
    OutboxMessage,
    OutboxStatus,
    Outcome,
    Policy,
    Role,
)
from portal.notifications import outbox
from portal.notifications.delivery import NotNeeded, RetryPolicy, attempt
from portal.workflow import record_decision, reminders
from portal.workflow.closing import cancel_request
from portal.workflow.invitations import revoke_link
from tests.conftest import on_screen

FRIDAY_NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TUESDAY = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)  # the first reminders are due
REMINDER = "Signoff: reminder, please review"


def _queued(make_deliverable, policy: Policy = Policy.PARALLEL) -> list[Any]:
    """Two approvers asked on Friday noon, their first reminders queued (unrendered) by
    Tuesday's sweep and not yet sent."""
    request = make_deliverable(DeliverableState.DELIVERED, policy=policy,
                               approvers=2).open_request
    for approver in request.approvers:
        reminders.schedule_first(approver, FRIDAY_NOON)
        approver.link_expires_at = FRIDAY_NOON + timedelta(days=request.link_ttl_days)
    request.sent_at = FRIDAY_NOON
    db.session.commit()
    assert reminders.sweep(TUESDAY).reminders == 2
    return list(request.approvers)


def _reminder(approver: Any) -> OutboxMessage:
    db.session.expire_all()  # the worker wrote it
    return db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.idempotency_key == f"reminder:{approver.id}:1"))


def _reminders_received(smtp_sink: Any, approver: Any) -> list[Any]:
    return [m for m in smtp_sink.to(approver.contact.email)
            if m["Subject"].startswith(REMINDER)]


def _assert_skipped(approver: Any, smtp_sink: Any, reason: str) -> None:
    assert _reminders_received(smtp_sink, approver) == []
    row = _reminder(approver)
    assert row.status == OutboxStatus.SKIPPED and row.status.label == "not needed"
    assert row.last_error == f"Not sent: {reason} before this reminder went out."
    assert row.attempts == 0 and row.claimed_until is None
    assert row not in outbox.problems()


def test_an_approval_under_any_one_of_stops_the_other_reminder(
        jobs_config, app, make_deliverable, run_worker, smtp_sink):
    first, other = _queued(make_deliverable, Policy.ANY_ONE)
    record_decision(first, Outcome.APPROVED, seen_sha256=on_screen(first))
    db.session.commit()
    run_worker.burst()
    # The other approver hears that no decision is needed any more, and nothing else.
    assert any("No decision needed" in m["Subject"] for m in smtp_sink.to(other.contact.email))
    _assert_skipped(other, smtp_sink, "the request closed (approved)")
    _assert_skipped(first, smtp_sink, "the request closed (approved)")
    run_worker.burst()  # a skipped row stays skipped
    assert _reminders_received(smtp_sink, other) == []


def test_a_cancellation_stops_queued_reminders(
        jobs_config, app, make_deliverable, run_worker, smtp_sink, staff, make_user,
        make_browser):
    approvers = _queued(make_deliverable)
    cancel_request(staff, approvers[0].request, TUESDAY)
    db.session.commit()
    run_worker.burst()
    for approver in approvers:
        _assert_skipped(approver, smtp_sink, "the request was cancelled")

    # Staff pages: no delivery problem; the outbox says "not needed" and why.
    reason = "Not sent: the request was cancelled before this reminder went out."
    someone = make_browser()
    someone.login(staff.email)
    problems = someone.get("/delivery-problems").get_data(as_text=True)
    assert approvers[0].contact.email not in problems and "cancelled" not in problems
    admin = make_browser()
    admin.login(make_user(Role.ADMIN).email)
    page = admin.get("/admin/outbox").get_data(as_text=True)
    assert page.count("Reminder (never written)") == 2 and page.count(reason) == 2
    row = _reminder(approvers[0])
    detail = admin.get(f"/admin/outbox/{row.id}").get_data(as_text=True)
    assert f"not needed — {reason}" in detail


def test_a_revoked_link_is_not_sent_but_the_still_needed_reminder_is(
        jobs_config, app, make_deliverable, run_worker, smtp_sink, staff):
    revoked, waiting = _queued(make_deliverable)
    revoke_link(staff, revoked, TUESDAY)  # the generation moves on
    db.session.commit()
    run_worker.burst()
    _assert_skipped(revoked, smtp_sink, "its link was replaced or revoked")
    [sent] = _reminders_received(smtp_sink, waiting)
    row = _reminder(waiting)
    assert row.status == OutboxStatus.SENT and row.last_error == ""
    assert row.subject == sent["Subject"] and row.deferred_template is None


def test_a_withdrawn_or_missing_approver_gets_no_reminder(
        jobs_config, app, make_deliverable, run_worker, smtp_sink):
    withdrawn, gone = _queued(make_deliverable)
    row = _reminder(gone)  # as if the approver had been deleted since
    context = json.loads(row.deferred_context)
    context["link"]["approver_id"] = 10**9
    row.deferred_context = json.dumps(context)
    withdrawn.status = ApproverStatus.WITHDRAWN
    db.session.commit()
    run_worker.burst()
    _assert_skipped(withdrawn, smtp_sink,
                    "the approver was no longer waiting to decide (withdrawn)")
    assert _reminders_received(smtp_sink, gone) == []
    row = _reminder(gone)  # skipped at once, not retried as an error
    assert (row.status, row.attempts) == (OutboxStatus.SKIPPED, 0)
    assert row.last_error == ("Not sent: the approver was removed from the request "
                              "before this reminder went out.")


def test_not_needed_from_prepare_ends_the_row_skipped_without_an_attempt(app):
    row = OutboxMessage(idempotency_key="any:1", to_addr="someone@client.test",
                        subject="Hello", body_text="Hello", body_html="<p>Hello</p>")
    db.session.add(row)
    db.session.commit()

    def prepare(message: OutboxMessage) -> None:
        raise NotNeeded("Not sent: nobody wants it.")

    result = attempt(OutboxMessage, row.id, prepare, RetryPolicy((0,), 5), TUESDAY)
    assert (result.status, result.error, result.retrying, result.attempted) == \
        (OutboxStatus.SKIPPED, "Not sent: nobody wants it.", False, True)
    db.session.expire_all()
    assert (row.status, row.attempts, row.last_error) == \
        (OutboxStatus.SKIPPED, 0, "Not sent: nobody wants it.")
    assert outbox.problems() == []
    # Left alone from then on, as sent and failed rows are.
    again = attempt(OutboxMessage, row.id, prepare, RetryPolicy((0,), 5), TUESDAY)
    assert (again.status, again.attempted) == (OutboxStatus.SKIPPED, False)
