"""Webhooks: signed events to a real local receiver, retries, resend, and SSRF refusals."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    AuditEvent,
    DeliverableState,
    OutboxStatus,
    Role,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from portal.notifications import webhooks
from portal.ops.metrics import WEBHOOK_ATTEMPT_FAILURES
from tests.servers import RecordingReceiver


@pytest.fixture
def receiver():
    server = RecordingReceiver("/hooks/signoff?x=1")
    yield server
    server.stop()


@pytest.fixture
def admin(make_user):
    return make_user(Role.ADMIN, email="ada@agency.example", name="Ada Admin")


@pytest.fixture
def endpoint(app, admin, receiver) -> WebhookEndpoint:
    registered = webhooks.register(admin, receiver.url, "Billing", allow_private=True)
    db.session.commit()
    return registered


def test_a_full_approval_sends_each_event_signed(endpoint, receiver, make_deliverable, browser):
    d = make_deliverable(DeliverableState.APPROVED_WITH_CONDITIONS, approvers=2)
    assert receiver.types() == ["request.delivered", "decision.recorded", "decision.recorded",
                                "request.approved"]
    headers, body = receiver.received[-1]
    event = json.loads(body)
    assert event["type"] == headers["Signoff-Event-Type"] == "request.approved"
    assert event["id"] == headers["Signoff-Event-Id"]
    assert event["data"]["status"] == "approved_with_conditions"
    assert event["data"]["version"]["sha256"] == d.current_version.sha256
    parts = dict(p.split("=", 1) for p in headers["Signoff-Signature"].split(","))
    expected = hmac.new(endpoint.secret.encode(), f"{parts['t']}.".encode() + body,
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert parts["t"] == headers["Signoff-Timestamp"]
    statuses = {d.status for d in db.session.scalars(select(WebhookDelivery))}
    assert statuses == {OutboxStatus.SENT}


def test_rejection_and_view_events(endpoint, receiver, make_deliverable, browser):
    from portal.workflow.links import issue_token

    d = make_deliverable(DeliverableState.DELIVERED)
    approver = d.open_request.approvers[0]
    browser.get(f"/r/{issue_token(approver)}")
    browser.get(browser.review)
    browser.post(f"{browser.review}/viewed")
    browser.post(f"{browser.review}/decision", {"choice": "request_changes",
                                                "text": "Wrong logo"})
    assert receiver.types() == ["request.delivered", "request.viewed", "decision.recorded",
                                "request.changes_requested"]
    decision = json.loads(receiver.received[2][1])["data"]["decision"]
    # The stored value stays 'rejected' for receivers; staff classify scope later.
    assert decision["outcome"] == "rejected" and decision["text"] == "Wrong logo"
    assert decision["scope"] is None


def test_staff_classifying_requested_changes_is_an_event(endpoint, receiver, make_deliverable,
                                                        staff):
    from portal.models import RejectionScope
    from portal.workflow.classification import classify_change_request

    d = make_deliverable(DeliverableState.CHANGES_REQUESTED)
    decision = d.versions[0].requests[0].approvers[0].decision
    classify_change_request(staff, decision, RejectionScope.CHANGE_REQUEST, "Quote CR-12")
    db.session.commit()
    classify_change_request(staff, decision, RejectionScope.IN_SCOPE, "")  # a correction
    db.session.commit()
    assert receiver.types()[-2:] == ["decision.classified", "decision.classified"]
    first, corrected = (json.loads(body)["data"]["decision"] for _, body in
                        receiver.received[-2:])
    assert (first["scope"], first["note"], first["outcome"]) == (
        "change_request", "Quote CR-12", "rejected")
    assert first["classified_by"] == {"name": staff.name, "email": staff.email}
    assert (corrected["scope"], corrected["note"]) == ("in_scope", "")


def app_metrics(_row) -> str:
    from flask import current_app

    return current_app.test_client().get("/-/metrics").get_data(as_text=True)


def test_failures_back_off_then_deliver_then_give_up_after_a_day(endpoint, receiver,
                                                                make_deliverable):
    failures_before = WEBHOOK_ATTEMPT_FAILURES._value.get()
    receiver.fail_next = 1
    make_deliverable(DeliverableState.DELIVERED)
    delivery = db.session.scalar(select(WebhookDelivery))
    assert delivery.status == OutboxStatus.PENDING and delivery.attempts == 1
    assert delivery.last_status_code == 503
    assert f"signoff_webhook_attempt_failures_total {failures_before + 1}" in (
        app_metrics(delivery))  # /-/metrics counts the failed attempt
    assert webhooks.relay(utcnow()) == 0  # not due yet
    assert webhooks.relay(delivery.next_attempt_at + timedelta(seconds=1)) == 1
    db.session.commit()  # the relay hands it to the queue at the commit
    db.session.refresh(delivery)
    assert delivery.status == OutboxStatus.SENT and len(receiver.received) == 1

    receiver.fail_next = 100
    delivery.status, delivery.attempts = OutboxStatus.PENDING, 0
    db.session.commit()
    moment = utcnow()
    for _ in range(len(webhooks.BACKOFF) + 1):
        webhooks.deliver(delivery.id, now=moment)
        db.session.refresh(delivery)
        moment = delivery.next_attempt_at
    assert delivery.status == OutboxStatus.FAILED
    assert sum(webhooks.BACKOFF) / 3600 == pytest.approx(22.6, abs=1.5)  # about a day


def test_admin_sees_the_log_and_can_resend(endpoint, receiver, make_deliverable, browser,
                                           admin):
    make_deliverable(DeliverableState.DELIVERED)
    delivery = db.session.scalar(select(WebhookDelivery))
    browser.login(admin.email)
    page = browser.get(f"/admin/webhooks/{endpoint.id}").get_data(as_text=True)
    assert delivery.event_id in page and "request.delivered" in page and endpoint.secret in page
    browser.post(f"/admin/webhooks/deliveries/{delivery.id}/resend")
    assert len(receiver.received) == 2
    first, second = (json.loads(body)["id"] for _, body in receiver.received)
    assert first == second  # the same event id, so receivers can drop the repeat


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://169.254.169.254/latest",
    "http://10.1.2.3/hook", "http://192.168.0.10/hook", "http://[::1]/hook",
    "ftp://example.com/hook", "http:///nohost",
])
def test_internal_or_odd_urls_are_refused(app, browser, admin, url):
    browser.login(admin.email)
    response = browser.post("/admin/webhooks", {"url": url, "description": "x"})
    assert response.status_code == 422
    assert db.session.scalar(select(WebhookEndpoint)) is None


def test_only_admins_manage_webhooks(app, browser, staff):
    browser.login(staff.email)
    assert browser.get("/admin/webhooks").status_code == 403
    assert browser.post("/admin/webhooks", {"url": "https://example.com/h"}).status_code == 403
    assert db.session.scalar(select(WebhookEndpoint)) is None


def test_a_switched_off_endpoint_gets_nothing_until_it_is_on_again(
        endpoint, receiver, make_deliverable, browser, admin):
    browser.login(admin.email)
    page = browser.get(f"/admin/webhooks/{endpoint.id}").get_data(as_text=True)
    assert "Switch off" in page and "Rotate the secret" in page
    assert browser.post(f"/admin/webhooks/{endpoint.id}/active",
                        {"active": "0"}).status_code == 302
    make_deliverable(DeliverableState.DELIVERED)  # request.delivered: not even written
    assert db.session.scalar(select(func.count(WebhookDelivery.id))) == 0

    # A delivery written before the switch-off waits, untouched, and goes out once it is on.
    waiting = WebhookDelivery(endpoint_id=endpoint.id, event_id="evt_waiting",
                              event_type="request.viewed",
                              payload=json.dumps({"id": "evt_waiting", "type": "request.viewed"}))
    db.session.add(waiting)
    db.session.commit()
    assert webhooks.deliver(waiting.id) == OutboxStatus.PENDING
    assert webhooks.relay(utcnow()) == 0
    db.session.refresh(waiting)
    assert waiting.attempts == 0 and receiver.received == []

    assert browser.post(f"/admin/webhooks/{endpoint.id}/active",
                        {"active": "1"}).status_code == 302
    assert webhooks.relay(utcnow()) == 1
    db.session.commit()
    db.session.refresh(waiting)
    assert waiting.status == OutboxStatus.SENT and receiver.types() == ["request.viewed"]
    verbs = db.session.scalars(select(AuditEvent.verb).where(
        AuditEvent.verb.like("webhook.%abled"))).all()
    assert verbs == ["webhook.disabled", "webhook.enabled"]


def test_rotating_the_secret_signs_with_the_new_one(endpoint, receiver, make_deliverable,
                                                    browser, admin):
    old = endpoint.secret
    browser.login(admin.email)
    assert browser.post(f"/admin/webhooks/{endpoint.id}/rotate").status_code == 302
    db.session.refresh(endpoint)
    assert endpoint.secret != old and len(endpoint.secret) == 64
    make_deliverable(DeliverableState.DELIVERED)
    headers, body = receiver.received[-1]
    parts = dict(p.split("=", 1) for p in headers["Signoff-Signature"].split(","))
    signed = f"{parts['t']}.".encode() + body
    assert parts["v1"] == hmac.new(endpoint.secret.encode(), signed, hashlib.sha256).hexdigest()
    assert parts["v1"] != hmac.new(old.encode(), signed, hashlib.sha256).hexdigest()


def test_only_admins_switch_off_or_rotate(endpoint, browser, staff):
    secret = endpoint.secret
    browser.login(staff.email)
    assert browser.post(f"/admin/webhooks/{endpoint.id}/active",
                        {"active": "0"}).status_code == 403
    assert browser.post(f"/admin/webhooks/{endpoint.id}/rotate").status_code == 403
    db.session.refresh(endpoint)
    assert endpoint.active and endpoint.secret == secret
