"""Webhooks: signed JSON events for admin-registered endpoints (the trigger for invoicing).

Each event becomes one WebhookDelivery row per endpoint, in the same transaction as the
change; after commit the queue sends it, and the sweep retries with backoff for about a
day. Receivers check `Signoff-Signature: t=<unix time>,v1=<hex>` where
v1 = HMAC-SHA256(secret, f"{t}.{raw body}"). `deliver` is a job's whole unit of work.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import uuid
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select

from portal import audit
from portal.database import due_pending_ids
from portal.errors import InvalidInput
from portal.extensions import db
from portal.models import OutboxStatus, User, WebhookDelivery, WebhookEndpoint, utcnow
from portal.notifications.delivery import Outcome, RetryPolicy, Send, attempt
from portal.notifications.queue import after_commit, relay_after_commit
from portal.notifications.safe_http import UnsafeDestination, post, resolve_safely
from portal.ops.metrics import WEBHOOK_ATTEMPT_FAILURES
from portal.permissions import require_admin

EVENTS = ("request.delivered", "request.viewed", "decision.recorded", "request.approved",
          "request.changes_requested", "request.expired", "certificate.issued",
          "decision.classified", "request.delegated")
# Seconds after each failed attempt: about 24 hours in all, then the delivery is failed.
BACKOFF = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
RETRY = RetryPolicy(BACKOFF, max_attempts=len(BACKOFF) + 1)
DELIVER_JOB = "jobs.webhooks.deliver"

__all__ = ["EVENTS", "UnsafeDestination", "deliver", "emit", "register", "relay", "resend",
           "rotate_secret", "set_active"]


def register(actor: User, url: str, description: str, allow_private: bool) -> WebhookEndpoint:
    require_admin(actor, "register webhooks")
    url = (url or "").strip()
    if len(url) > 2000:
        raise InvalidInput("That URL is too long.")
    resolve_safely(url, allow_private)
    endpoint = WebhookEndpoint(url=url, description=(description or "").strip()[:200],
                               secret=secrets.token_hex(32), allow_private_network=allow_private)
    db.session.add(endpoint)
    audit.record(actor, "webhook.registered", endpoint, url=url, allow_private=allow_private)
    return endpoint


def set_active(actor: User, endpoint: WebhookEndpoint, active: bool) -> None:
    """Switch an endpoint off (no new events, nothing sent) or on again; what was waiting
    while it was off goes out at the next relay."""
    require_admin(actor, "manage webhooks")
    if endpoint.active == active:
        return
    endpoint.active = active
    audit.record(actor, "webhook.enabled" if active else "webhook.disabled", endpoint,
                 url=endpoint.url)


def rotate_secret(actor: User, endpoint: WebhookEndpoint) -> None:
    """A new signing secret; the receiver must switch to it (the old one stops verifying)."""
    require_admin(actor, "manage webhooks")
    endpoint.secret = secrets.token_hex(32)
    audit.record(actor, "webhook.secret_rotated", endpoint, url=endpoint.url)


def _send_after_commit(delivery_id: int) -> None:
    after_commit(DELIVER_JOB, delivery_id, job_id=f"webhook-{delivery_id}")


def emit(event_type: str, data: dict[str, Any]) -> None:
    """Queue this event for every active endpoint, in the caller's transaction."""
    assert event_type in EVENTS, event_type
    endpoints = db.session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active)).all()
    if not endpoints:
        return
    event_id = f"evt_{uuid.uuid4().hex}"
    body = json.dumps({"id": event_id, "type": event_type, "created_at": utcnow().isoformat(),
                       "data": data}, sort_keys=True, separators=(",", ":"), default=str)
    for endpoint in endpoints:
        delivery = WebhookDelivery(endpoint=endpoint, event_id=event_id, event_type=event_type,
                                   payload=body)
        db.session.add(delivery)
        db.session.flush()
        _send_after_commit(delivery.id)


def signature(secret: str, timestamp: int, body: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def deliver(delivery_id: int, now: datetime | None = None) -> OutboxStatus | None:
    """One attempt at one delivery; a disabled endpoint's deliveries wait, untouched.
    The POST happens outside any transaction, cut off after WEBHOOK_TIMEOUT in all."""
    now = now or utcnow()
    deadline = float(current_app.config["WEBHOOK_TIMEOUT"])

    def prepare(delivery: WebhookDelivery) -> Send | None:
        endpoint = delivery.endpoint
        if not endpoint.active:
            return None
        timestamp = int(now.timestamp())
        url, allow_private, body = endpoint.url, endpoint.allow_private_network, delivery.payload
        headers = {"Content-Type": "application/json", "User-Agent": "Signoff-Webhooks/1",
                   "Signoff-Event-Id": delivery.event_id,
                   "Signoff-Event-Type": delivery.event_type,
                   "Signoff-Timestamp": str(timestamp),
                   "Signoff-Signature": signature(endpoint.secret, timestamp, body)}

        def send() -> Outcome:
            try:
                code = post(url, allow_private, body, headers, deadline=deadline)
            except (OSError, http.client.HTTPException, InvalidInput) as exc:
                WEBHOOK_ATTEMPT_FAILURES.inc()
                return Outcome(getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}")
            if not 200 <= code < 300:
                WEBHOOK_ATTEMPT_FAILURES.inc()
                return Outcome(f"HTTP {code}", {"last_status_code": code})
            return Outcome(fields={"last_status_code": code, "delivered_at": now})
        return send

    return attempt(WebhookDelivery, delivery_id, prepare, RETRY, now).status


def relay(now: datetime | None = None, limit: int = 500) -> int:
    """Hand every due delivery of an active endpoint to the queue at the caller's commit;
    returns how many."""
    active = select(WebhookEndpoint.id).where(WebhookEndpoint.active)
    due = due_pending_ids(WebhookDelivery, now or utcnow(), limit,
                          WebhookDelivery.endpoint_id.in_(active))
    return relay_after_commit(DELIVER_JOB, due, "webhook")


def resend(actor: User, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the same event (same id, so receivers can deduplicate) once more."""
    require_admin(actor, "resend webhooks")
    RetryPolicy.restart(delivery, utcnow())
    audit.record(actor, "webhook.resent", delivery, event_id=delivery.event_id)
    _send_after_commit(delivery.id)
    return delivery
