"""Where an erased client's values were copied to: emails in the outbox, webhook payloads,
kept API answers and audit event details (portal/people/erasure.py decides what goes)."""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from portal import audit, audit_erasure
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Contact,
    IdempotentRequest,
    OutboxMessage,
    OutboxStatus,
    WebhookDelivery,
)
from portal.people import erasure_text as words
from portal.people.erasure_text import ERASED, Pseudonyms

NOT_SENT = "not sent: the client's personal data was erased"
_LIKE_CHUNK = 100


@dataclass
class Reach:
    """What the erasure covers, by key."""

    request_ids: set[int]
    # deliverable id -> when its last erased request closed: its emails until then go whole.
    cut: dict[int, datetime]
    contact_ids: set[int] = field(default_factory=set)
    erased_emails: set[str] = field(default_factory=set)  # lower case
    # (table, id) of every row of the erased requests an audit event may be about.
    owned: set[tuple[str, int]] = field(default_factory=set)
    # The erased client, its deliverables and all its requests: no copy outside them is
    # touched (another client's namesake or a staff user keeps their rows).
    client_id: int = 0
    deliverable_ids: set[int] = field(default_factory=set)
    client_request_ids: set[int] = field(default_factory=set)


def set_changed(row: Any, **values: Any) -> bool:
    """Set only what differs; True if anything did."""
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    for key, value in changed.items():
        setattr(row, key, value)
    return bool(changed)


def _mentioning(columns: list[Any], values: Iterable[str]) -> list[Any]:
    """WHERE clauses, a chunk of values each: any column contains any value."""
    needles = sorted({v.lower() for v in values if v})
    return [or_(*(func.lower(col).contains(v, autoescape=True)
                  for col in columns for v in needles[i:i + _LIKE_CHUNK]))
            for i in range(0, len(needles), _LIKE_CHUNK)]


def _candidates(model: Any, *where: Any) -> list[Any]:
    found: dict[int, Any] = {}
    for clause in where:
        for row in db.session.scalars(select(model).where(clause)):
            found[row.id] = row
    return [found[k] for k in sorted(found)]


def _not_sent(row: Any) -> dict[str, Any]:
    """A message still waiting would go out with pseudonyms: it is not sent at all."""
    return {"status": OutboxStatus.SKIPPED, "last_error": NOT_SENT} \
        if row.status == OutboxStatus.PENDING else {}


def _rewritten(text: str, names: Pseudonyms, *, traces: bool) -> str:
    """JSON text rewritten (as compact, sorted JSON); the same text when nothing changes."""
    try:
        value = json.loads(text)
    except ValueError:
        return names.rewrite(text)
    new = names.rewrite_json(value, traces=traces)
    return text if new == value else audit.canonical_detail(new)


def erase_outbox(names: Pseudonyms, reach: Reach) -> int:
    """Emails of the erased client's deliverables (or of none, to an erased person): those
    of the erased requests (written until the last one closed), to an erased person, or
    naming one lose subject and bodies; addresses become pseudonyms."""
    m = OutboxMessage
    rows = _candidates(m, m.deliverable_id.in_(sorted(reach.deliverable_ids)),
                       and_(m.deliverable_id.is_(None),
                            func.lower(m.to_addr).in_(sorted(reach.erased_emails))))
    changed = 0
    for row in rows:
        cut = reach.cut.get(row.deliverable_id or 0)
        whole = ((cut is not None and row.created_at <= cut)
                 or row.to_addr.lower() in reach.erased_emails
                 or any(names.mentions(v) for v in (row.to_name, row.subject, row.body_text,
                                                     row.body_html)))
        values: dict[str, Any] = {
            "to_addr": names.rewrite(row.to_addr), "to_name": names.rewrite(row.to_name),
            "reply_to": names.rewrite(row.reply_to), "last_error": names.rewrite(row.last_error)}
        if whole:
            values.update(subject=ERASED, body_text=ERASED, body_html=ERASED, **_not_sent(row))
        if row.deferred_context:
            values["deferred_context"] = _rewritten(row.deferred_context, names, traces=whole)
        changed += set_changed(row, **values)
    return changed


def erase_webhooks(names: Pseudonyms, reach: Reach) -> int:
    """Payloads about the erased client's requests, rewritten (the body was signed when
    sent; one still waiting is not sent)."""
    w = WebhookDelivery
    marks = [f'"client":{{"id":{reach.client_id},',
             *(f'"request_id":{i}{end}' for i in reach.client_request_ids for end in ",}")]
    rows = [row for row in _candidates(w, *_mentioning([w.payload], marks))
            if _about_client(row.payload, reach)]
    changed = 0
    for row in rows:
        payload = _rewritten(row.payload, names, traces=True)
        values: dict[str, Any] = {"last_error": names.rewrite(row.last_error)
                                  if row.last_error else row.last_error}
        if payload != row.payload:
            values.update(payload=payload, **_not_sent(row))
        changed += set_changed(row, **values)
    return changed


def _about_client(payload: str, reach: Reach) -> bool:
    """A webhook payload's data is about one of the erased client's requests."""
    try:
        data = json.loads(payload).get("data") or {}
    except (ValueError, AttributeError):
        return False
    client = data.get("client") if isinstance(data, dict) else None
    return (isinstance(client, dict) and client.get("id") == reach.client_id) or (
        isinstance(data, dict) and data.get("request_id") in reach.client_request_ids)


def forget_api_answers(names: Pseudonyms) -> int:
    """A kept answer to an API call (a replay cache, dropped after a day anyway) that
    names an erased person is deleted, not rewritten. People only: a short text such as
    "OK" must not delete another caller's answer (and let its retry run twice)."""
    doomed = [row for row in db.session.scalars(select(IdempotentRequest))
              if names.mentions_person(row.body.decode("utf-8", errors="replace"))]
    for row in doomed:
        db.session.delete(row)
    return len(doomed)


def erase_audit(names: Pseudonyms, reach: Reach) -> dict[str, str]:
    """Rewrite the events that carry erased values: by an erased contact, about one or a
    row of an erased request (whose IPs and user agents go too), or of one of the client's
    deliverables; nothing outside them. Returns seq -> the row's digest as it now reads,
    for the erasure event to vouch for."""
    e = AuditEvent
    actors = {f"contact:{i}": i for i in reach.contact_ids}
    by_table: dict[str, set[int]] = {Contact.__tablename__: set(reach.contact_ids)}
    for table, row_id in reach.owned:
        by_table.setdefault(table, set()).add(row_id)
    rows = _candidates(e, e.actor.in_(list(actors)),
                       *(and_(e.subject_type == table, e.subject_id.in_(sorted(ids)))
                         for table, ids in by_table.items()),
                       e.deliverable_id.in_(sorted(reach.deliverable_ids)))
    redacted: dict[str, str] = {}
    for event in rows:
        if event.verb == audit_erasure.ERASURE_VERB:
            continue
        label = (words.actor_label(actors[event.actor]) if event.actor in actors
                 else names.rewrite(event.actor_label))
        detail = _rewritten(event.detail, names,
                            traces=(event.subject_type, event.subject_id) in reach.owned)
        if set_changed(event, actor_label=label, detail=detail):
            redacted[str(event.seq)] = audit_erasure.current_digest(event)
    return redacted
