"""Optional step-up before a decision: a 6-digit code emailed to the approver's address.

A request can ask for it (per request, defaulting from the client). The approver asks for
a code, types it back within ten minutes (five tries at most), and then has half an hour
to decide; the decision uses the confirmation up once. Only a keyed hash of a code is
kept. A wrong try is a change of its own that the caller commits, so failing tries count
even though nothing else happens.
"""
from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal import audit
from portal.database import lock_row
from portal.errors import IllegalTransition, InvalidInput, NotAllowed
from portal.extensions import db
from portal.models import Approver, ApproverStatus, DecisionCode, RequestStatus, utcnow
from portal.notifications.compose import compose
from portal.notifications.outbox import ONE_TIME_KEY_PREFIX
from portal.workflow.on_screen import check_on_screen

CODE_TTL = timedelta(minutes=10)
DECIDE_WITHIN = timedelta(minutes=30)  # after confirming the code
MAX_TRIES = 5
CODES_PER_HOUR = 5
SALT = b"signoff.decision-code.v1"


class CodeCheck(enum.Enum):
    CONFIRMED = "confirmed"
    WRONG = "wrong"
    EXPIRED = "expired"
    NO_TRIES_LEFT = "no_tries_left"
    NONE_SENT = "none_sent"


@dataclass(frozen=True)
class StepUp:
    """What the decision panel shows about the code."""

    required: bool
    confirmed: bool = False
    sent: bool = False  # a code is out and can still be typed
    masked_email: str = ""


def masked(email: str) -> str:
    """jane@acme.example -> j***@acme.example: enough to recognise, not to harvest."""
    local, _at, domain = (email or "").partition("@")
    return f"{local[:1]}***@{domain}" if domain else _("the address we have for you")


def _digest(approver_id: int, code: str) -> str:
    key = hashlib.sha256(SALT + current_app.config["SECRET_KEY"].encode()).digest()
    return hmac.new(key, f"{approver_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _newest(approver: Approver) -> DecisionCode | None:
    return db.session.scalars(select(DecisionCode).where(DecisionCode.approver_id == approver.id)
                              .order_by(DecisionCode.id.desc()).limit(1)).first()


def _require_decidable(approver: Approver) -> None:
    if not approver.request.require_code:
        raise IllegalTransition(_("This request does not ask for a code."))
    if approver.request.status != RequestStatus.OPEN or approver.status != ApproverStatus.INVITED:
        raise IllegalTransition(_("There is no decision waiting for you here."))


def state(approver: Approver, now: datetime | None = None) -> StepUp:
    if not approver.request.require_code:
        return StepUp(required=False)
    now = now or utcnow()
    newest = _newest(approver)
    confirmed = (newest is not None and newest.confirmed_at is not None
                 and newest.used_at is None and now <= newest.confirmed_at + DECIDE_WITHIN)
    sent = (newest is not None and newest.confirmed_at is None and now <= newest.expires_at
            and newest.tries < MAX_TRIES)
    return StepUp(required=True, confirmed=confirmed, sent=sent,
                  masked_email=masked(approver.contact.email or ""))


def send_code(approver: Approver, *, seen_sha256: str | None,
              now: datetime | None = None) -> None:
    """Email a fresh code to the address on file; any earlier code stops working."""
    check_on_screen(approver.request, approver.contact, seen_sha256)
    _require_decidable(approver)
    now = now or utcnow()
    lock_row(Approver, approver.id)  # parallel asks count one after another
    recent = db.session.scalar(select(func.count()).select_from(DecisionCode).where(
        DecisionCode.approver_id == approver.id, DecisionCode.sent_at > now - timedelta(hours=1)))
    if recent >= CODES_PER_HOUR:
        raise InvalidInput(_("We have sent you %(count)s codes in the last hour. Please use "
                             "the newest one, or wait a little before asking again.",
                             count=CODES_PER_HOUR))
    for older in db.session.scalars(select(DecisionCode).where(
            DecisionCode.approver_id == approver.id, DecisionCode.expires_at > now)):
        older.expires_at = now
    code = f"{secrets.randbelow(10 ** 6):06d}"
    row = DecisionCode(approver_id=approver.id, digest=_digest(approver.id, code), sent_at=now,
                       expires_at=now + CODE_TTL)
    db.session.add(row)
    db.session.flush()
    deliverable = approver.request.version.deliverable
    compose(to_addr=approver.contact.email or "", to_name=approver.contact.name,
            template="decision_code", idempotency_key=f"{ONE_TIME_KEY_PREFIX}{row.id}",
            deliverable_id=deliverable.id, reply_to=deliverable.owner.email, code=code,
            minutes=int(CODE_TTL.total_seconds() // 60), deliverable=deliverable,
            version=approver.request.version)
    audit.record(approver.contact, "decision_code.sent", approver, deliverable=deliverable,
                 to=approver.contact.email)


def confirm_code(approver: Approver, typed: str, *, seen_sha256: str | None,
                 now: datetime | None = None) -> CodeCheck:
    """Check a typed code. Every try counts, so the caller commits whatever the answer."""
    check_on_screen(approver.request, approver.contact, seen_sha256)
    _require_decidable(approver)
    now = now or utcnow()
    newest = _newest(approver)
    if newest is not None:  # parallel tries queue here, so each one counts
        newest = lock_row(DecisionCode, newest.id)
    if newest is None or newest.confirmed_at is not None:
        return CodeCheck.NONE_SENT
    if newest.tries >= MAX_TRIES:
        return CodeCheck.NO_TRIES_LEFT
    if now > newest.expires_at:
        return CodeCheck.EXPIRED
    newest.tries += 1
    typed = "".join(ch for ch in typed or "" if not ch.isspace())
    if not hmac.compare_digest(newest.digest, _digest(approver.id, typed)):
        return CodeCheck.WRONG if newest.tries < MAX_TRIES else CodeCheck.NO_TRIES_LEFT
    newest.confirmed_at = now
    audit.record(approver.contact, "decision_code.confirmed", approver,
                 deliverable=approver.request.version.deliverable)
    return CodeCheck.CONFIRMED


def use_confirmation(approver: Approver, now: datetime) -> None:
    """Part of recording a decision on a request that asks for a code."""
    if not state(approver, now).confirmed:
        raise NotAllowed(_("This decision needs the code we email you: ask for a code and "
                           "type it in first."))
    newest = _newest(approver)
    assert newest is not None
    newest.used_at = now
