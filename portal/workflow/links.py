"""Review links: signed, expiring, revocable, free of personal data, and sent by one function.

A token carries only the approver's opaque public id and link generation. Bumping the
generation (resend, revoke, email change, cancellation) kills every older link at once.
A link's lifetime has one truth, `Approver.link_expires_at`: what staff see, what the
sweep expires requests by, and what the review page checks. Every email that carries a
link renews it, and `send_review_link` (one email, rendered now) and `link_email_row`
(many, rendered when sent: the reminder sweep) are the only code that sends one.
"""
from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.extensions import db
from portal.i18n import in_language, portal_language
from portal.models import (
    Approver,
    ApproverStatus,
    Deliverable,
    Project,
    RequestStatus,
    ReviewRequest,
    Version,
    utcnow,
)
from portal.models.base import Choice
from portal.notifications.compose import compose
from portal.notifications.delivery import NotNeeded
from portal.urls import external_url

SALT = "signoff.review-link.v1"  # used for nothing else, so no other token verifies here


class LinkState(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class LinkCheck:
    approver: Approver
    state: LinkState
    generation: Any
    signed_at: datetime


def _on_record(choice: Choice) -> str:
    """A stored reason (the outbox's "not sent: …") is in the portal's language, whoever's
    action or job wrote it."""
    with in_language(portal_language()):
        return choice.label


def _serializer() -> URLSafeTimedSerializer:
    # Timed for compatibility with links already sent; the signing time decides nothing.
    config = current_app.config
    # itsdangerous signs with the last key and verifies with any of them.
    keys = [*config.get("SECRET_KEY_FALLBACKS", []), config["SECRET_KEY"]]
    return URLSafeTimedSerializer(keys, salt=SALT)


def issue_token(approver: Approver, generation: int | None = None) -> str:
    """A token of the current generation, or of `generation`: an email queued before a
    resend or revocation carries the link it was queued with, dead like any older one."""
    return _serializer().dumps({"a": approver.public_id,
                                "g": approver.link_generation if generation is None
                                else generation})


def review_link(approver: Approver, generation: int | None = None) -> str:
    return external_url("client.open_link", token=issue_token(approver, generation))


def renewed_until(now: datetime, link_ttl_days: int) -> datetime:
    """When a link emailed at `now` stops working."""
    return now + timedelta(days=link_ttl_days)


def link_state(approver: Approver, generation: Any, now: datetime | None = None) -> LinkState:
    """What a link of this generation is worth now. No expiry yet (nobody emailed a link)
    counts as live, as it does for the sweep."""
    if generation != approver.link_generation:
        return LinkState.REVOKED
    expires = approver.link_expires_at
    if expires is not None and (now or utcnow()) > expires:
        return LinkState.EXPIRED
    return LinkState.VALID


def check_token(token: str, now: datetime | None = None) -> LinkCheck | None:
    """What a token grants; None for a tampered, foreign or unknown token."""
    try:
        payload, signed_at = _serializer().loads(token, return_timestamp=True)
    except BadData:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("a"), str):
        return None
    approver = db.session.scalar(select(Approver).where(Approver.public_id == payload["a"]))
    if approver is None:
        return None
    generation = payload.get("g")
    return LinkCheck(approver, link_state(approver, generation, now), generation, signed_at)


def _link_email_context(approver: Approver, url: str) -> dict[str, Any]:
    request = approver.request
    return {"deliverable": request.version.deliverable, "version": request.version,
            "request": request, "approver": approver, "url": url, "sender": request.sent_by}


def send_review_link(approver: Approver, now: datetime, *, idempotency_key: str,
                     template: str = "review_request", anchor: str = "",
                     **context: Any) -> None:
    """Email the approver their link (an invitation, a reminder, a renewal, a resend or a
    reply from the team), good for the request's link lifetime from `now`. An `anchor`
    opens the review page at that element (the fragment survives the link's redirect)."""
    request = approver.request
    deliverable = request.version.deliverable
    approver.link_expires_at = renewed_until(now, request.link_ttl_days)
    compose(
        to_addr=approver.contact.email or "", to_name=approver.contact.name,
        template=template, idempotency_key=idempotency_key,
        deliverable_id=deliverable.id, reply_to=deliverable.owner.email,
        **_link_email_context(approver, review_link(approver) + (f"#{anchor}" if anchor else "")),
        **context,
    )


def link_email_row(*, approver_id: int, generation: int, to_addr: str, to_name: str,
                   reply_to: str, deliverable_id: int, template: str, idempotency_key: str,
                   **context: Any) -> dict[str, Any]:
    """The outbox row of a link email rendered when it is sent (notifications/deferred.py),
    for callers writing many at once; what send_review_link writes, but for the rendering.
    The caller renews the link (`renewed_until`) in the same transaction, as
    send_review_link does. `context` holds plain JSON values only."""
    return {"idempotency_key": idempotency_key, "to_addr": to_addr, "to_name": to_name,
            "reply_to": reply_to, "subject": "", "body_text": "", "body_html": "",
            "deliverable_id": deliverable_id, "deferred_template": template,
            "deferred_context": json.dumps(
                {"link": {"approver_id": approver_id, "generation": generation}, **context},
                sort_keys=True, separators=(",", ":"))}


def deferred_link_context(approver_id: int, generation: int) -> dict[str, Any]:
    """What send_review_link gives the template, for a row queued by link_email_row: the
    link is signed now, with the generation it was queued with."""
    request = joinedload(Approver.request)
    deliverable = request.joinedload(ReviewRequest.version).joinedload(Version.deliverable)
    approver = db.session.get(Approver, approver_id, options=[  # one query, not eight
        request.joinedload(ReviewRequest.sent_by), deliverable.joinedload(Deliverable.owner),
        deliverable.joinedload(Deliverable.project).joinedload(Project.client)])
    _still_needed(approver, generation)
    return _link_email_context(approver, review_link(approver, generation))


def _still_needed(approver: Approver | None, generation: int) -> None:
    """A link email queued earlier asks for a decision that may no longer be wanted: one
    whose approver, request or link moved on since is not sent (NotNeeded, in plain words)."""
    if approver is None:
        reason = "the approver was removed from the request"
    elif approver.request.status == RequestStatus.CANCELLED:
        reason = "the request was cancelled"
    elif approver.request.status != RequestStatus.OPEN:
        reason = f"the request closed ({_on_record(approver.request.status)})"
    elif approver.status != ApproverStatus.INVITED:
        reason = ("the approver was no longer waiting to decide "
                  f"({_on_record(approver.status)})")
    elif generation != approver.link_generation:
        reason = "its link was replaced or revoked"
    else:
        return
    raise NotNeeded(f"Not sent: {reason} before this reminder went out.")
