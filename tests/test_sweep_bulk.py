"""The set-based reminder sweep: the same rows and events as reminding one by one, a chain
that verifies, emails rendered once by the send job, and almost nothing when nothing is due."""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from portal import audit
from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    AuditEvent,
    DeliverableState,
    OutboxMessage,
    Reminder,
)
from portal.notifications import deferred
from portal.workflow import reminders
from portal.workflow.invitations import revoke_link
from portal.workflow.links import LinkState, check_token, send_review_link
from portal.workflow.workdays import business_days_after
from tests.conftest import as_sent

FRIDAY_NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TUESDAY = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)  # the first reminders are due everywhere
TOKEN = re.compile(r"/r/[A-Za-z0-9_.-]+")


def _delivered(make_deliverable, make_project, make_client, count: int, zone: str,
               project: Any = None) -> list[Any]:
    """`count` requests of two approvers each, sent on Friday noon, for a client in `zone`
    (or in `project`)."""
    if project is None:
        client = make_client(contacts=2)
        client.timezone = zone
        project = make_project(client)
    approvers = []
    for _ in range(count):
        request = make_deliverable(DeliverableState.DELIVERED, project=project,
                                   approvers=2).open_request
        for approver in request.approvers:
            reminders.schedule_first(approver, FRIDAY_NOON)
            approver.link_expires_at = FRIDAY_NOON + timedelta(days=request.link_ttl_days)
            approvers.append(approver)
        request.sent_at = FRIDAY_NOON
    db.session.commit()
    return approvers


def _written(approver: Approver) -> dict[str, Any]:
    """Everything a reminder wrote about this approver, without ids and tokens."""
    db.session.refresh(approver)
    reminder = db.session.scalars(select(Reminder).where(Reminder.approver_id == approver.id)).all()
    [email] = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.idempotency_key.startswith(f"reminder:{approver.id}:"))).all()
    [event] = db.session.scalars(select(AuditEvent).where(
        AuditEvent.verb == "reminder.sent", AuditEvent.subject_id == approver.id)).all()
    rendered = as_sent(email)
    return {
        "approver": (approver.reminders_sent, approver.next_reminder_at,
                     approver.link_expires_at),
        "reminders": [(r.number, r.manual, r.sent_at) for r in reminder],
        "email": (email.idempotency_key.replace(f":{approver.id}:", ":ID:"), email.to_addr,
                  email.to_name, email.reply_to, email.deliverable_id,
                  email.attachment_certificate_id, rendered.subject,
                  TOKEN.sub("/r/TOKEN", rendered.body_text),
                  TOKEN.sub("/r/TOKEN", rendered.body_html)),
        "event": (event.actor, event.actor_label, event.subject_type, event.deliverable_id,
                  json.loads(event.detail)),
    }


def test_the_sweep_writes_what_reminding_one_by_one_writes(
        app, make_deliverable, make_project, make_client):
    swept = _delivered(make_deliverable, make_project, make_client, 3, "America/New_York")
    by_hand = _delivered(make_deliverable, make_project, make_client, 3, "",
                         project=swept[0].request.version.deliverable.project)
    for approver in by_hand:  # out of the sweep's way
        approver.next_reminder_at = None
    db.session.commit()

    assert reminders.sweep(TUESDAY).reminders == len(swept) == 6
    for approver in by_hand:
        assert reminders.remind(approver, TUESDAY)
        db.session.commit()

    expected_next = business_days_after(TUESDAY, 2, app_zone("America/New_York"), 9)
    for one, other in zip(swept, by_hand, strict=True):
        mine, theirs = _written(one), _written(other)
        assert mine["approver"] == theirs["approver"] == (
            1, expected_next, TUESDAY + timedelta(days=one.request.link_ttl_days))
        assert mine["reminders"] == theirs["reminders"] == [(1, False, TUESDAY)]
        assert mine["event"][4] == {"number": 1, "manual": False, "to": one.contact.email}
        assert mine["event"][:2] == theirs["event"][:2] == ("system", "Signoff")
        assert mine["event"][2:4] == ("approvers", one.request.version.deliverable_id)
        # Same email (names and titles are the same in both worlds, ids aside).
        assert mine["email"][0] == theirs["email"][0] == "reminder:ID:1"
        assert mine["email"][6:] == theirs["email"][6:]
        assert mine["email"][1] == one.contact.email
        assert mine["email"][3] == one.request.version.deliverable.owner.email


def app_zone(name: str):
    from zoneinfo import ZoneInfo
    return ZoneInfo(name)


def test_a_deferred_reminder_reads_as_the_email_composed_at_once(
        app, make_deliverable, make_project, make_client):
    [approver, _other] = _delivered(make_deliverable, make_project, make_client, 1,
                                    "Asia/Tokyo")
    reminders.sweep(TUESDAY)
    db.session.refresh(approver)
    [queued] = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.idempotency_key == f"reminder:{approver.id}:1")).all()
    later = as_sent(queued)

    # What the eager path (send_review_link through compose) writes for the same reminder,
    # in a savepoint that is rolled back.
    with db.session.begin_nested() as nested:
        send_review_link(approver, TUESDAY, template="reminder", number=1,
                         idempotency_key="compare:1")
        eager = db.session.scalar(select(OutboxMessage).where(
            OutboxMessage.idempotency_key == "compare:1"))
        composed = (eager.subject, eager.body_text, eager.body_html)
        nested.rollback()
    assert (later.subject, TOKEN.sub("/r/T", later.body_text),
            TOKEN.sub("/r/T", later.body_html)) == \
        (composed[0], TOKEN.sub("/r/T", composed[1]), TOKEN.sub("/r/T", composed[2]))
    assert "JST" in later.body_text  # the link's end in the client's zone
    token = TOKEN.search(later.body_text).group(0)[3:]
    assert check_token(token).state == LinkState.VALID


def test_rendering_happens_once_and_leaves_other_rows_alone(
        app, make_deliverable, make_project, make_client):
    [approver, _other] = _delivered(make_deliverable, make_project, make_client, 1, "UTC")
    reminders.sweep(TUESDAY)
    invite = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.idempotency_key.startswith("invite:")))
    before = (invite.subject, invite.body_text, invite.body_html)
    deferred.ensure_rendered(invite)
    assert (invite.subject, invite.body_text, invite.body_html) == before

    queued = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.idempotency_key == f"reminder:{approver.id}:1"))
    deferred.ensure_rendered(queued)
    first = (queued.subject, queued.body_text)
    assert queued.deferred_template is None and "reminder, please review" in first[0]
    deferred.ensure_rendered(queued)  # a second call renders nothing again
    assert (queued.subject, queued.body_text) == first
    db.session.rollback()


def test_the_audit_chain_verifies_after_a_bulk_sweep(
        app, make_deliverable, make_project, make_client, staff):
    approvers = _delivered(make_deliverable, make_project, make_client, 4, "Europe/Berlin")
    before = audit.verify_chain()
    assert before.ok
    assert reminders.sweep(TUESDAY).reminders == len(approvers)
    after = audit.verify_chain()
    assert after.ok and after.checked == before.checked + len(approvers)
    revoke_link(staff, approvers[0], TUESDAY)  # one event more, chained after the batch
    db.session.commit()
    assert audit.verify_chain().ok
    # Tampering with one bulk-written event is caught at that event.
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.verb == "reminder.sent")
                              .order_by(AuditEvent.seq.desc()).limit(1))
    event.detail = event.detail.replace('"number":1', '"number":2')
    db.session.commit()
    broken = audit.verify_chain()
    assert not broken.ok and broken.bad_seq == event.seq


def test_a_second_sweep_sends_nothing_again(app, make_deliverable, make_project, make_client):
    approvers = _delivered(make_deliverable, make_project, make_client, 2, "UTC")
    assert reminders.sweep(TUESDAY).reminders == 4
    # As if a sweep had died after reading the due rows: they are due again on paper.
    for approver in approvers:
        approver.next_reminder_at = TUESDAY - timedelta(hours=1)
        approver.reminders_sent = 0
    db.session.commit()
    assert reminders.sweep(TUESDAY).reminders == 0  # the (approver, number) key holds
    assert len(db.session.scalars(select(Reminder)).all()) == 4
    assert len(db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.idempotency_key.startswith("reminder:"))).all()) == 4


def test_a_sweep_with_nothing_due_is_a_few_statements(
        app, make_deliverable, make_project, make_client, count_queries):
    _delivered(make_deliverable, make_project, make_client, 3, "UTC")
    with count_queries() as counter:
        report = reminders.sweep(FRIDAY_NOON + timedelta(hours=1))
    assert (report.reminders, report.escalations, report.expired) == (0, 0, 0)
    assert counter.count <= 8


def test_only_invited_approvers_with_live_links_are_reminded(
        app, make_deliverable, make_project, make_client, staff):
    approvers = _delivered(make_deliverable, make_project, make_client, 2, "UTC")
    revoke_link(staff, approvers[0], FRIDAY_NOON)
    approvers[0].next_reminder_at = FRIDAY_NOON  # a stale schedule the sweep must stop
    approvers[1].status = ApproverStatus.WITHDRAWN
    db.session.commit()
    assert reminders.sweep(TUESDAY).reminders == 2
    db.session.refresh(approvers[0])
    assert approvers[0].next_reminder_at is None and approvers[0].reminders_sent == 0


def test_swept_reminders_reach_the_sink_rendered_once(
        jobs_config, app, make_deliverable, make_project, make_client, run_worker, smtp_sink):
    approvers = _delivered(make_deliverable, make_project, make_client, 2, "Europe/Berlin")
    run_worker.burst()  # the invitations
    invited = len(smtp_sink.messages)
    assert reminders.sweep(TUESDAY).reminders == len(approvers)
    run_worker.burst()
    assert len(smtp_sink.messages) == invited + len(approvers)
    for approver in approvers:
        email = smtp_sink.to(approver.contact.email)[-1]
        assert email["Subject"].startswith("Signoff: reminder, please review Homepage v3 v1")
        text = email.get_body(("plain",)).get_content()
        assert "still waiting for your decision" in text and "CET" in text
        token = TOKEN.search(text).group(0)[3:]
        assert check_token(token).state == LinkState.VALID
        stored = db.session.scalar(select(OutboxMessage).where(
            OutboxMessage.idempotency_key == f"reminder:{approver.id}:1"))
        assert stored.deferred_template is None and stored.subject == email["Subject"]
        assert TOKEN.sub("", stored.body_text).strip() == \
            TOKEN.sub("", text.replace("\r\n", "\n")).strip()
    run_worker.burst()  # nothing is sent twice
    assert len(smtp_sink.messages) == invited + len(approvers)


def test_rendering_a_reminder_reads_a_few_rows(
        app, make_deliverable, make_project, make_client, count_queries):
    [approver, _other] = _delivered(make_deliverable, make_project, make_client, 1, "UTC")
    reminders.sweep(TUESDAY)
    queued = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.idempotency_key == f"reminder:{approver.id}:1"))
    db.session.expire_all()  # as in the send job's own session
    queued = db.session.get(OutboxMessage, queued.id)
    with count_queries() as counter:
        copy = as_sent(queued)
    assert "reminder, please review" in copy.subject
    assert counter.count <= 4  # the approver with its request's graph, zone, agency
    db.session.rollback()
