"""The one sanctioned rewrite of audit rows: a retention erasure (portal/people/erasure.py).

The rewritten rows keep their stored hash, so the chain's links hold. The erasure appends
one chained event (ERASURE_VERB) whose detail maps the seq of every earlier row it rewrote
to the digest that row has afterwards, and names its scope (contacts, deliverables). That
map is signed with an HMAC under a key derived from SECRET_KEY, which lives outside the
database: anyone who can write rows can append an erasure event, but not one that
verifies, so a forged event vouches for nothing and its rows are checked strictly.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent

ERASURE_VERB = "client.erased"
_PURPOSE = b"signoff audit erasure v1"
VOUCHER = "voucher"
# Audit subjects an erasure may rewrite: the rows of a request and who took part.
TOUCHABLE_SUBJECTS = frozenset({
    "contacts", "review_requests", "approvers", "decisions", "conditions", "comments",
    "delegations", "observers", "certificates", "decisions_on_behalf"})


def erasure_keys(secret_keys: Iterable[str | bytes]) -> list[bytes]:
    """The HMAC keys for erasure vouchers, one per app secret (current first)."""
    return [hmac.new(k.encode() if isinstance(k, str) else k, _PURPOSE,
                     hashlib.sha256).digest() for k in secret_keys if k]


def app_erasure_keys() -> list[bytes]:
    """SECRET_KEY, then SECRET_KEY_FALLBACKS: a rotated key still verifies old erasures."""
    config = current_app.config
    return erasure_keys([config["SECRET_KEY"], *config.get("SECRET_KEY_FALLBACKS", [])])


def _signed_part(subject_id: int, detail: dict[str, Any]) -> bytes:
    body = {k: v for k, v in detail.items() if k != VOUCHER}
    return json.dumps([subject_id, body], sort_keys=True, separators=(",", ":"),
                      default=str).encode()


def voucher(key: bytes, subject_id: int, detail: dict[str, Any]) -> str:
    """The HMAC that binds an erasure event's detail (its redacted map and scope) to
    the client it erased."""
    return hmac.new(key, _signed_part(subject_id, detail), hashlib.sha256).hexdigest()


def current_digest(event: AuditEvent) -> str:
    """The digest of the event as it reads now: what an erasure records for a row it
    rewrote."""
    from portal.audit import _digest
    return _digest(event)


@dataclass
class Vouchers:
    """What the erasure events in the trail vouch for, and which ones do not hold."""

    digest: dict[int, str] = field(default_factory=dict)  # seq -> vouched digest
    by: dict[int, int] = field(default_factory=dict)  # seq -> erasure event seq
    scope: dict[int, tuple[set[str], set[int]]] = field(default_factory=dict)
    rejected: list[int] = field(default_factory=list)  # forged or changed erasure events
    # seq -> the rejected erasure event that claimed it (for the report)
    claimed_by_rejected: dict[int, int] = field(default_factory=dict)

    def accepts(self, event: AuditEvent) -> bool:
        """The row reads as an erasure left it, and lies in that erasure's scope."""
        erasure = self.by.get(event.seq)
        if erasure is None or current_digest(event) != self.digest[event.seq]:
            return False
        actors, deliverables = self.scope[erasure]
        return (event.actor in actors or event.deliverable_id in deliverables
                or event.subject_type in TOUCHABLE_SUBJECTS
                or f"{event.subject_type}:{event.subject_id}" in actors)

    def why_not(self, seq: int) -> str:
        """Why a changed row was not accepted, when an erasure event had a say in it."""
        if seq in self.claimed_by_rejected:
            return (f" (erasure event {self.claimed_by_rejected[seq]}, which may have vouched "
                    "for it, was forged or changed: its voucher does not verify)")
        later = [s for s in self.rejected if s > seq]
        if later:
            return (f" (erasure event {later[0]}, which may have vouched for it, was forged "
                    "or changed: its voucher does not verify)")
        if seq in self.by:
            return (f" (erasure event {self.by[seq]} vouches for it, but not as it reads now "
                    "or not within its scope)")
        return ""


def _parsed(erasure: AuditEvent) -> dict[str, Any] | None:
    try:
        detail = json.loads(erasure.detail)
    except ValueError:
        return None
    return detail if isinstance(detail, dict) else None


def read_vouchers(keys: Sequence[bytes]) -> Vouchers:
    """Every erasure event's claims; one whose own hash or HMAC fails vouches for
    nothing. Only earlier rows count, and a later erasure of the same row wins."""
    from portal.audit import _digest
    found = Vouchers()
    for erasure in db.session.scalars(select(AuditEvent).where(
            AuditEvent.verb == ERASURE_VERB).order_by(AuditEvent.seq)):
        detail = _parsed(erasure)
        redacted = detail.get("redacted") if detail else None
        if not isinstance(redacted, dict):
            redacted = {}
        signature = str(detail.get(VOUCHER, "")) if detail else ""
        genuine = detail is not None and _digest(erasure) == erasure.hash and any(
            hmac.compare_digest(voucher(k, erasure.subject_id, detail), signature)
            for k in keys)
        claims = {int(s): str(d) for s, d in redacted.items()
                  if str(s).isdigit() and int(s) < erasure.seq}
        if not genuine:
            found.rejected.append(erasure.seq)
            found.claimed_by_rejected.update(dict.fromkeys(claims, erasure.seq))
            continue
        assert detail is not None
        contacts = {f"contact:{i}" for i in detail.get("contacts", [])} | {
            f"contacts:{i}" for i in detail.get("contacts", [])}
        found.scope[erasure.seq] = (contacts, set(detail.get("deliverables", [])))
        for seq, digest in claims.items():
            found.digest[seq], found.by[seq] = digest, erasure.seq
            found.claimed_by_rejected.pop(seq, None)
    return found


def accepted_summary(accepted: dict[int, int]) -> str:
    """'12 rewritten by erasure events 40 (7), 88 (5)', for `flask audit verify`."""
    if not accepted:
        return ""
    parts = ", ".join(f"{seq} ({n})" for seq, n in sorted(accepted.items()))
    return f"{sum(accepted.values())} rewritten by erasure events {parts}"
