"""Magic links: signed, expiring, revocable, and free of personal data.

A token carries only the approver's opaque public id and link generation. Bumping the
generation (resend, revoke, email change, cancellation) kills every older link at once.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import select

from portal.extensions import db
from portal.models import Approver

SALT = "signoff.review-link.v1"  # used for nothing else, so no other token verifies here


class LinkState(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class LinkCheck:
    approver: Approver
    state: LinkState
    signed_at: datetime


def _serializer() -> URLSafeTimedSerializer:
    config = current_app.config
    # itsdangerous signs with the last key and verifies with any of them.
    keys = [*config.get("SECRET_KEY_FALLBACKS", []), config["SECRET_KEY"]]
    return URLSafeTimedSerializer(keys, salt=SALT)


def issue_token(approver: Approver) -> str:
    return _serializer().dumps({"a": approver.public_id, "g": approver.link_generation})


def review_link(approver: Approver) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/r/{issue_token(approver)}"


def expires_at(approver: Approver, signed_at: datetime) -> datetime:
    return signed_at + timedelta(days=approver.request.link_ttl_days)


def classify(approver: Approver, generation: Any, signed_at: datetime,
             now: datetime | None = None) -> LinkState:
    if generation != approver.link_generation:
        return LinkState.REVOKED
    if (now or datetime.now(UTC)) > expires_at(approver, signed_at):
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
    return LinkCheck(approver, classify(approver, payload.get("g"), signed_at, now), signed_at)
