"""Retention: a former client's personal data replaced by pseudonyms once its requests are
long finished (`flask clients erase`).

What goes: contacts' names and emails, hand-over colleagues, every free text written on the
erased requests (comments and their resolution notes, decision texts and classification
notes, conditions, hand-over and on-behalf notes, evidence file names), the IP addresses
and browsers of decisions and views, and those values wherever they were copied: emails in
the outbox, webhook payloads, kept API answers and audit event details.

What stays: the client's (company) name, projects, deliverables and files, outcomes and
dates, and each issued certificate, byte for byte: it is the record the agency keeps of an
approval, and it still verifies by its hash. Audit rows are rewritten in place and an
erasure event vouches for each rewritten row (portal/audit.py, ERASURE_VERB).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import and_, func, or_, select

from portal import audit
from portal.errors import DomainError
from portal.extensions import db
from portal.models import (
    Approver,
    AuditEvent,
    Client,
    Comment,
    Contact,
    Decision,
    Delegation,
    Deliverable,
    IdempotentRequest,
    OutboxMessage,
    OutboxStatus,
    Project,
    RequestStatus,
    ReviewRequest,
    User,
    Version,
    WebhookDelivery,
)
from portal.models.observers import Observer
from portal.models.on_behalf import DecisionOnBehalf
from portal.people import erasure_text as words
from portal.people.erasure_text import ERASED, Pseudonyms

NOT_SENT = "not sent: the client's personal data was erased"
_LIKE_CHUNK = 100


class ErasureRefused(DomainError):
    pass


@dataclass
class ErasureReport:
    requests_erased: int = 0
    requests_kept: int = 0
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class _Scope:
    request_ids: set[int]
    cut: dict[int, datetime]  # deliverable id -> when its last erased request closed
    contacts: list[Contact]
    erased_emails: set[str] = field(default_factory=set)


def find_client(reference: str) -> Client | None:
    """By exact name first, else by id (a client named "12" is found by its name)."""
    client = db.session.scalar(select(Client).where(Client.name == reference))
    if client is None and reference.strip().isdigit():
        client = db.session.get(Client, int(reference.strip()))
    return client


def erase_client(client: Client, before: date, actor: User | None,
                 now: datetime) -> ErasureReport:
    """Pseudonymise what belongs to the client's requests finished before `before`.
    Refused, with nothing changed, while any request of the client is open."""
    requests = list(db.session.scalars(
        select(ReviewRequest).join(ReviewRequest.version).join(Version.deliverable)
        .join(Deliverable.project).where(Project.client_id == client.id)))
    still_open = [r.id for r in requests if r.status == RequestStatus.OPEN]
    if still_open:
        raise ErasureRefused(f"Client {client.name!r} has {len(still_open)} open request(s) "
                             f"({', '.join(map(str, sorted(still_open)))}); nothing was erased.")
    cutoff = datetime.combine(before, time.min, tzinfo=UTC)
    erased = [r for r in requests if r.closed_at is not None and r.closed_at < cutoff]
    kept = [r for r in requests if r not in erased]
    scope = _scope(client, erased, kept, cutoff)
    report = ErasureReport(len(erased), len(kept))
    if not erased and not scope.contacts:
        return report
    names = _pseudonyms(scope)
    counts = report.counts
    counts["contacts"] = _erase_contacts(scope)
    counts.update(_erase_request_rows(scope))
    counts["outbox_messages"] = _erase_outbox(names, scope)
    counts["webhook_deliveries"] = _erase_webhooks(names, scope)
    counts["kept_api_answers_deleted"] = _forget_api_answers(names)
    redacted = _erase_audit(names, scope)
    counts["audit_events"] = len(redacted)
    db.session.flush()
    audit.record(actor, audit.ERASURE_VERB, client, before=before.isoformat(),
                 erased_at=now.isoformat(), requests=sorted(r.id for r in erased),
                 counts=counts, redacted=redacted)
    return report


def _involved(request_ids: Iterable[int]) -> set[int]:
    """Contacts who took part in these requests: approvers (and colleagues handed over
    to), observers and comment authors."""
    ids = list(request_ids)
    if not ids:
        return set()
    found = set(db.session.scalars(select(Approver.contact_id)
                                   .where(Approver.request_id.in_(ids))))
    found |= set(db.session.scalars(select(Observer.contact_id)
                                    .where(Observer.request_id.in_(ids))))
    found |= set(db.session.scalars(select(Comment.author_contact_id).where(
        Comment.request_id.in_(ids), Comment.author_contact_id.is_not(None))))
    return found


def _scope(client: Client, erased: list[ReviewRequest], kept: list[ReviewRequest],
           cutoff: datetime) -> _Scope:
    """A contact goes when no kept request involves them, and they took part in an erased
    one or (with no request kept at all) were added before the cutoff and never asked."""
    in_erased, in_kept = _involved(r.id for r in erased), _involved(r.id for r in kept)
    contacts = [c for c in client.contacts if c.id not in in_kept and (
        c.id in in_erased or (not kept and c.created_at < cutoff))]
    cut: dict[int, datetime] = {}
    for request in erased:
        deliverable_id = request.version.deliverable_id
        assert request.closed_at is not None
        cut[deliverable_id] = max(cut.get(deliverable_id, request.closed_at), request.closed_at)
    return _Scope({r.id for r in erased}, cut, contacts)


def _decisions(scope: _Scope) -> list[Decision]:
    return list(db.session.scalars(select(Decision).where(
        Decision.request_id.in_(scope.request_ids)))) if scope.request_ids else []


def _in_requests(model: Any, scope: _Scope) -> list[Any]:
    return list(db.session.scalars(select(model).where(
        model.request_id.in_(scope.request_ids)))) if scope.request_ids else []


def _pseudonyms(scope: _Scope) -> Pseudonyms:
    """Every original value, read before anything is rewritten."""
    names = Pseudonyms()
    for contact in scope.contacts:
        names.person(contact.name, words.contact_name(contact.id))
        names.person(contact.email, words.contact_email(contact.id))
        if contact.email:
            scope.erased_emails.add(contact.email.lower())
    for delegation in _in_requests(Delegation, scope):
        names.person(delegation.name, words.colleague_name(delegation.id))
        names.person(delegation.email, words.colleague_email(delegation.id))
        scope.erased_emails.add(delegation.email.lower())
        names.text(delegation.note)
    for comment in _in_requests(Comment, scope):
        names.text(comment.body)
        names.text(comment.resolution_note)
    for decision in _decisions(scope):
        for value in (decision.text, decision.classification_note, decision.ip,
                      decision.user_agent):
            names.text(value)
        for condition in decision.conditions:
            names.text(condition.text)
            names.text(condition.note)
        if decision.on_behalf is not None:
            names.text(decision.on_behalf.note)
            names.text(decision.on_behalf.evidence_name)
    return names


def _set(row: Any, **values: Any) -> bool:
    """Set only what differs; True if anything did."""
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    for key, value in changed.items():
        setattr(row, key, value)
    return bool(changed)


def _marker(value: str | None) -> str | None:
    """The marker in place of a text; nothing written stays nothing."""
    return ERASED if value else value


def _erase_contacts(scope: _Scope) -> int:
    return sum(_set(c, name=words.contact_name(c.id),
                    email=words.contact_email(c.id) if c.email else None)
               for c in scope.contacts)


def _erase_request_rows(scope: _Scope) -> dict[str, int]:
    counts = {"delegations": 0, "comments": 0, "decisions": 0, "conditions": 0,
              "on_behalf": 0}
    for d in _in_requests(Delegation, scope):
        counts["delegations"] += _set(d, name=words.colleague_name(d.id),
                                      email=words.colleague_email(d.id), note=_marker(d.note))
    for c in _in_requests(Comment, scope):
        counts["comments"] += _set(c, body=ERASED, resolution_note=_marker(c.resolution_note))
    for decision in _decisions(scope):
        counts["decisions"] += _set(
            decision, text=_marker(decision.text),
            classification_note=_marker(decision.classification_note),
            ip=_marker(decision.ip), user_agent=_marker(decision.user_agent))
        for condition in decision.conditions:
            counts["conditions"] += _set(condition, text=_marker(condition.text),
                                         note=_marker(condition.note))
        behalf: DecisionOnBehalf | None = decision.on_behalf
        if behalf is not None:
            name = behalf.evidence_name
            counts["on_behalf"] += _set(behalf, note=_marker(behalf.note), evidence_name=(
                f"evidence-{behalf.id}{PurePosixPath(name).suffix[:12]}" if name else name))
    return counts


def _mentioning(columns: list[Any], values: Iterable[str]) -> list[Any]:
    """WHERE clauses, a chunk of values each: any column contains any value."""
    values = sorted({v.lower() for v in values if v})
    return [or_(*(func.lower(col).contains(v, autoescape=True)
                  for col in columns for v in values[i:i + _LIKE_CHUNK]))
            for i in range(0, len(values), _LIKE_CHUNK)]


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


def _erase_outbox(names: Pseudonyms, scope: _Scope) -> int:
    m = OutboxMessage
    rows = _candidates(m, m.deliverable_id.in_(list(scope.cut)),
                       func.lower(m.to_addr).in_(scope.erased_emails),
                       *_mentioning([m.to_addr, m.subject, m.body_text], names.searchable))
    changed = 0
    for row in rows:
        cut = scope.cut.get(row.deliverable_id or 0)
        whole = ((cut is not None and row.created_at <= cut)
                 or row.to_addr.lower() in scope.erased_emails
                 or any(names.mentions(v) for v in (row.to_name, row.subject, row.body_text,
                                                     row.body_html)))
        values: dict[str, Any] = {
            "to_addr": names.rewrite(row.to_addr), "to_name": names.rewrite(row.to_name),
            "reply_to": names.rewrite(row.reply_to), "last_error": names.rewrite(row.last_error)}
        if whole:
            values.update(subject=ERASED, body_text=ERASED, body_html=ERASED, **_not_sent(row))
        if row.deferred_context:
            values["deferred_context"] = _rewritten(row.deferred_context, names, traces=whole)
        changed += _set(row, **values)
    return changed


def _rewritten(text: str, names: Pseudonyms, *, traces: bool) -> str:
    """JSON text rewritten; the same text when nothing in it changes."""
    try:
        value = json.loads(text)
    except ValueError:
        return names.rewrite(text)
    new = names.rewrite_json(value, traces=traces)
    return text if new == value else json.dumps(new, sort_keys=True, separators=(",", ":"),
                                                default=str)


def _erase_webhooks(names: Pseudonyms, scope: _Scope) -> int:
    w = WebhookDelivery
    ids = [f'"request_id":{i},' for i in scope.request_ids]
    rows = _candidates(w, *_mentioning([w.payload], [*names.searchable, *ids]))
    changed = 0
    for row in rows:
        payload = _rewritten(row.payload, names, traces=True)
        if payload != row.payload:
            changed += _set(row, payload=payload, **_not_sent(row))
    return changed


def _forget_api_answers(names: Pseudonyms) -> int:
    """A kept answer to an API call (a replay cache, dropped after a day anyway) that
    names the client's people is deleted, not rewritten."""
    doomed = [row for row in db.session.scalars(select(IdempotentRequest))
              if names.mentions(row.body.decode("utf-8", errors="replace"))]
    for row in doomed:
        db.session.delete(row)
    return len(doomed)


def _erase_audit(names: Pseudonyms, scope: _Scope) -> dict[str, str]:
    """Rewrite the events that carry the erased values; seq -> digest of the row as it now
    reads, for the erasure event to vouch for."""
    e = AuditEvent
    actors = {f"contact:{c.id}": c.id for c in scope.contacts}
    rows = _candidates(e, e.deliverable_id.in_(list(scope.cut)), e.actor.in_(list(actors)),
                       and_(e.subject_type == Contact.__tablename__,
                            e.subject_id.in_(list(actors.values()))),
                       *_mentioning([e.detail, e.actor_label], names.searchable))
    redacted: dict[str, str] = {}
    for event in rows:
        if event.verb == audit.ERASURE_VERB:
            continue
        cut = scope.cut.get(event.deliverable_id or 0)
        label = (words.actor_label(actors[event.actor]) if event.actor in actors
                 else names.rewrite(event.actor_label))
        detail = _canonical(event.detail, names, traces=cut is not None and event.at <= cut)
        if _set(event, actor_label=label, detail=detail):
            redacted[str(event.seq)] = audit.current_digest(event)
    return redacted


def _canonical(detail: str, names: Pseudonyms, *, traces: bool) -> str:
    value = json.loads(detail)
    new = names.rewrite_json(value, traces=traces)
    return detail if new == value else audit.canonical_detail(new)
