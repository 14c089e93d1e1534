"""Webhooks: signed JSON events for admin-registered endpoints (the trigger for invoicing).

Each event becomes one WebhookDelivery row per endpoint, in the same transaction as the
change; after commit the queue sends it, and the sweep retries with backoff for 24 hours.
Receivers check `Signoff-Signature: t=<unix time>,v1=<hex>` where
v1 = HMAC-SHA256(secret, f"{t}.{raw body}").
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import secrets
import socket
import ssl
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from portal import audit
from portal.errors import IllegalTransition, InvalidInput
from portal.extensions import db
from portal.models import (
    OutboxStatus,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from portal.queue import after_commit, enqueue_unless_waiting
from portal.rows import due_pending_ids, lock_row

EVENTS = ("request.delivered", "request.viewed", "decision.recorded", "request.approved",
          "request.changes_requested", "request.expired", "certificate.issued")
# Seconds after each failed attempt: about 24 hours in all, then the delivery is failed.
BACKOFF = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
DELIVER_JOB = "jobs.webhooks.deliver"
TIMEOUT = 10


class UnsafeDestination(InvalidInput):
    pass


def _addresses(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeDestination(f"The host {host!r} does not resolve: {exc}.") from exc
    return sorted({info[4][0] for info in infos})


def resolve_safely(url: str, allow_private: bool) -> tuple[str, str, int]:
    """The (scheme, address, port) to connect to; refuses internal addresses (SSRF)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeDestination("Webhook URLs must be http:// or https:// with a host name.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _addresses(parts.hostname, port)
    for address in addresses:
        ip = ipaddress.ip_address(address)
        internal = (ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_reserved
                    or ip.is_multicast or ip.is_unspecified)
        if internal and not allow_private:
            raise UnsafeDestination(
                f"{parts.hostname} resolves to {address}, an internal address. Webhooks may "
                "not reach loopback, link-local or private networks unless an admin allows "
                "it for this endpoint.")
    return parts.scheme, addresses[0], port


def register(actor: User, url: str, description: str, allow_private: bool) -> WebhookEndpoint:
    if not actor.is_admin:
        raise IllegalTransition("Only admins can register webhooks.")
    url = (url or "").strip()
    if len(url) > 2000:
        raise InvalidInput("That URL is too long.")
    resolve_safely(url, allow_private)
    endpoint = WebhookEndpoint(url=url, description=(description or "").strip()[:200],
                               secret=secrets.token_hex(32), allow_private_network=allow_private)
    db.session.add(endpoint)
    audit.record(actor, "webhook.registered", endpoint, url=url, allow_private=allow_private)
    return endpoint


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
        after_commit(DELIVER_JOB, delivery.id, job_id=f"webhook-{delivery.id}")


def signature(secret: str, timestamp: int, body: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address we already checked, still verifying the certificate's name."""

    def __init__(self, address: str, host: str, port: int) -> None:
        super().__init__(host, port, timeout=TIMEOUT, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _post(endpoint: WebhookEndpoint, body: str, headers: dict[str, str]) -> int:
    # Resolve once and connect to that address, so DNS cannot swap in an internal one.
    scheme, address, port = resolve_safely(endpoint.url, endpoint.allow_private_network)
    parts = urlsplit(endpoint.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection = (
        _PinnedHTTPS(address, parts.hostname or "", port) if scheme == "https"
        else http.client.HTTPConnection(address, port, timeout=TIMEOUT))
    try:
        connection.request("POST", path, body=body.encode(),
                           headers={**headers, "Host": parts.netloc})
        return connection.getresponse().status
    finally:
        connection.close()


def deliver(delivery_id: int, now: datetime | None = None) -> OutboxStatus | None:
    delivery = lock_row(WebhookDelivery, delivery_id, skip_locked=True)
    if delivery is None or delivery.status != OutboxStatus.PENDING:
        db.session.rollback()
        return delivery.status if delivery else None
    now = now or utcnow()
    timestamp = int(now.timestamp())
    headers = {"Content-Type": "application/json", "User-Agent": "Signoff-Webhooks/1",
               "Signoff-Event-Id": delivery.event_id, "Signoff-Event-Type": delivery.event_type,
               "Signoff-Timestamp": str(timestamp),
               "Signoff-Signature": signature(delivery.endpoint.secret, timestamp,
                                              delivery.payload)}
    delivery.attempts += 1
    try:
        code = _post(delivery.endpoint, delivery.payload, headers)
        delivery.last_status_code = code
        error = "" if 200 <= code < 300 else f"HTTP {code}"
    except (OSError, http.client.HTTPException, InvalidInput) as exc:
        error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
    delivery.last_error = error[:2000]
    if not error:
        delivery.status = OutboxStatus.SENT
        delivery.delivered_at = now
    elif delivery.attempts > len(BACKOFF):
        delivery.status = OutboxStatus.FAILED
    else:
        delivery.next_attempt_at = now + timedelta(seconds=BACKOFF[delivery.attempts - 1])
    db.session.commit()
    return delivery.status


def relay(now: datetime | None = None, limit: int = 500) -> int:
    due = due_pending_ids(WebhookDelivery, now or utcnow(), limit)
    return sum(enqueue_unless_waiting(DELIVER_JOB, i, job_id=f"webhook-{i}") for i in due)


def resend(actor: User, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the same event (same id, so receivers can deduplicate) once more."""
    if not actor.is_admin:
        raise IllegalTransition("Only admins can resend webhooks.")
    delivery.status = OutboxStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    audit.record(actor, "webhook.resent", delivery, event_id=delivery.event_id)
    after_commit(DELIVER_JOB, delivery.id, job_id=f"webhook-{delivery.id}")
    return delivery


def request_data(request: Any) -> dict[str, Any]:
    """What every request event says about its request (ids, names, the exact file)."""
    version = request.version
    deliverable = version.deliverable
    return {
        "request_id": request.id, "status": request.status.value,
        "deliverable": {"id": deliverable.id, "title": deliverable.title},
        "project": {"id": deliverable.project.id, "name": deliverable.project.name},
        "client": {"id": deliverable.project.client.id, "name": deliverable.project.client.name},
        "version": {"number": version.number, "file_name": version.file_name,
                    "sha256": version.sha256},
        "due_date": request.due_date.isoformat(),
        "approvers": [{"name": a.contact.name, "email": a.contact.email,
                       "status": a.status.value} for a in request.approvers],
    }
