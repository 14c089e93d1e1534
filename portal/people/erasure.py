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
erasure event, signed, vouches for each rewritten row (portal/audit_erasure.py).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import func, select

from portal import audit
from portal import audit_erasure as erasures
from portal.errors import DomainError
from portal.extensions import db
from portal.models import (
    Approver,
    Certificate,
    Client,
    Comment,
    Condition,
    Contact,
    Decision,
    Delegation,
    Deliverable,
    Project,
    RequestStatus,
    ReviewRequest,
    User,
    Version,
)
from portal.models.observers import Observer
from portal.models.on_behalf import DecisionOnBehalf
from portal.people import erasure_copies as copies
from portal.people import erasure_text as words
from portal.people.erasure_copies import Reach, set_changed
from portal.people.erasure_text import ERASED, Pseudonyms


class ErasureRefused(DomainError):
    pass


@dataclass
class ErasureReport:
    requests_erased: int = 0
    requests_kept: int = 0
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class _Scope:
    contacts: list[Contact]
    reach: Reach
    # Names and emails (lower case) also held by another client's contact or a staff user:
    # never searched for or rewritten in copies, which could be theirs.
    shared: set[str] = field(default_factory=set)


@dataclass
class ErasurePlan:
    """What an erasure of the client before a date would do (read only)."""

    client: Client
    erased: list[ReviewRequest]
    kept: list[ReviewRequest]
    still_open: list[int]


def find_client(*, client_id: int | None = None, name: str | None = None) -> Client | None:
    """By id or by exact name (the operator says which: a client named "12" is not #12)."""
    if client_id is not None:
        return db.session.get(Client, client_id)
    return db.session.scalar(select(Client).where(Client.name == name))


def plan_erasure(client: Client, before: date) -> ErasurePlan:
    requests = list(db.session.scalars(
        select(ReviewRequest).join(ReviewRequest.version).join(Version.deliverable)
        .join(Deliverable.project).where(Project.client_id == client.id)
        .order_by(ReviewRequest.id)))
    cutoff = _cutoff(before)
    erased = [r for r in requests if r.status != RequestStatus.OPEN
              and r.closed_at is not None and r.closed_at < cutoff]
    return ErasurePlan(client, erased, [r for r in requests if r not in erased],
                       [r.id for r in requests if r.status == RequestStatus.OPEN])


def _cutoff(before: date) -> datetime:
    return datetime.combine(before, time.min, tzinfo=UTC)


def _lock(client: Client) -> None:
    """Hold the client row until commit, so no request of it opens mid-erasure
    (workflow.deliver takes the same row, shared). SQLite's write lock serialises."""
    db.session.execute(select(Client.id).where(Client.id == client.id).with_for_update())


def erase_client(client: Client, before: date, actor: User | None, now: datetime,
                 voucher_key: bytes | None = None) -> ErasureReport:
    """Pseudonymise what belongs to the client's requests finished before `before` (the
    end of the retention period). Refused, with nothing changed, while any request of the
    client is open. `voucher_key` signs the audit voucher (default: from SECRET_KEY)."""
    _lock(client)
    plan = plan_erasure(client, before)
    if plan.still_open:
        raise ErasureRefused(f"Client {client.name!r} has {len(plan.still_open)} open "
                             f"request(s) ({', '.join(map(str, plan.still_open))}); nothing "
                             "was erased.")
    erased, kept = plan.erased, plan.kept
    scope = _scope(client, erased, kept, _cutoff(before))
    report = ErasureReport(len(erased), len(kept))
    if not erased and not scope.contacts:
        return report
    names = _pseudonyms(scope)
    counts = report.counts
    counts["contacts"] = sum(set_changed(
        c, name=words.contact_name(c.id), email=words.contact_email(c.id) if c.email else None)
        for c in scope.contacts)
    counts.update(_erase_request_rows(scope.reach))
    counts["outbox_messages"] = copies.erase_outbox(names, scope.reach)
    counts["webhook_deliveries"] = copies.erase_webhooks(names, scope.reach)
    counts["kept_api_answers_deleted"] = copies.forget_api_answers(names)
    redacted = copies.erase_audit(names, scope.reach)
    counts["audit_events"] = len(redacted)
    detail: dict[str, Any] = {
        "before": before.isoformat(), "erased_at": now.isoformat(),
        "requests": sorted(r.id for r in erased), "counts": counts, "redacted": redacted,
        # The voucher's scope: verify accepts a rewritten row only within it.
        "contacts": sorted(scope.reach.contact_ids),
        "deliverables": sorted(scope.reach.deliverable_ids)}
    key = voucher_key if voucher_key is not None else erasures.app_erasure_keys()[0]
    detail[erasures.VOUCHER] = erasures.voucher(key, client.id, detail)
    audit.record(actor, erasures.ERASURE_VERB, client, **detail)
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
        closed, deliverable_id = request.closed_at, request.version.deliverable_id
        assert closed is not None
        cut[deliverable_id] = max(cut.get(deliverable_id, closed), closed)
    shared = _held_elsewhere(client.id, [
        *(v for c in contacts for v in (c.name, c.email)),
        *(v for d in _of_requests(Delegation, Reach({r.id for r in erased}, cut))
          for v in (d.name, d.email))])
    reach = Reach({r.id for r in erased}, cut, {c.id for c in contacts},
                  {c.email.lower() for c in contacts
                   if c.email and c.email.lower() not in shared})
    reach.client_id = client.id
    reach.client_request_ids = {r.id for r in erased} | {r.id for r in kept}
    reach.deliverable_ids = set(db.session.scalars(select(Deliverable.id).join(
        Deliverable.project).where(Project.client_id == client.id)))
    reach.owned = {(ReviewRequest.__tablename__, r.id) for r in erased}
    for model in (Approver, Comment, Decision, Delegation, Observer, Certificate):
        reach.owned |= {(model.__tablename__, row.id) for row in _of_requests(model, reach)}
    reach.owned |= {(Condition.__tablename__, c.id)
                    for d in _of_requests(Decision, reach) for c in d.conditions}
    return _Scope(contacts, reach, shared)


def _held_elsewhere(client_id: int, values: Iterable[str | None]) -> set[str]:
    """Which of these names and emails (lower case) another client's contact or a staff
    user also has."""
    wanted = sorted({v.lower() for v in values if v})
    if not wanted:
        return set()
    found: set[str] = set()
    for column, *where in ((Contact.name, Contact.client_id != client_id),
                           (Contact.email, Contact.client_id != client_id),
                           (User.name,), (User.email,)):
        found |= set(db.session.scalars(select(func.lower(column)).where(
            func.lower(column).in_(wanted), *where)))
    return found


def _of_requests(model: Any, reach: Reach) -> list[Any]:
    return list(db.session.scalars(select(model).where(
        model.request_id.in_(sorted(reach.request_ids))))) if reach.request_ids else []


def _pseudonyms(scope: _Scope) -> Pseudonyms:
    """Every original value, read before anything is rewritten."""
    names, reach = Pseudonyms(), scope.reach

    def person(value: str | None, pseudonym: str) -> None:
        if value and value.lower() not in scope.shared:
            names.person(value, pseudonym)

    for contact in scope.contacts:
        person(contact.name, words.contact_name(contact.id))
        person(contact.email, words.contact_email(contact.id))
    for delegation in _of_requests(Delegation, reach):
        person(delegation.name, words.colleague_name(delegation.id))
        person(delegation.email, words.colleague_email(delegation.id))
        if delegation.email.lower() not in scope.shared:
            reach.erased_emails.add(delegation.email.lower())
        names.text(delegation.note)
    for comment in _of_requests(Comment, reach):
        names.text(comment.body)
        names.text(comment.resolution_note)
    for decision in _of_requests(Decision, reach):
        names.text(decision.text)
        names.text(decision.classification_note)
        names.trace(decision.ip)
        names.trace(decision.user_agent)
        for condition in decision.conditions:
            names.text(condition.text)
            names.text(condition.note)
        if decision.on_behalf is not None:
            names.text(decision.on_behalf.note)
            names.text(decision.on_behalf.evidence_name)
    return names


def _marker(value: str | None) -> str | None:
    """The marker in place of a text; nothing written stays nothing."""
    return ERASED if value else value


def _erase_request_rows(reach: Reach) -> dict[str, int]:
    counts = {"delegations": 0, "comments": 0, "decisions": 0, "conditions": 0,
              "on_behalf": 0}
    for d in _of_requests(Delegation, reach):
        counts["delegations"] += set_changed(d, name=words.colleague_name(d.id),
                                             email=words.colleague_email(d.id),
                                             note=_marker(d.note))
    for c in _of_requests(Comment, reach):
        counts["comments"] += set_changed(c, body=ERASED,
                                          resolution_note=_marker(c.resolution_note))
    for decision in _of_requests(Decision, reach):
        counts["decisions"] += set_changed(
            decision, text=_marker(decision.text),
            classification_note=_marker(decision.classification_note),
            ip=_marker(decision.ip), user_agent=_marker(decision.user_agent))
        for condition in decision.conditions:
            counts["conditions"] += set_changed(condition, text=_marker(condition.text),
                                                note=_marker(condition.note))
        behalf: DecisionOnBehalf | None = decision.on_behalf
        if behalf is not None:
            name = behalf.evidence_name
            counts["on_behalf"] += set_changed(behalf, note=_marker(behalf.note), evidence_name=(
                f"evidence-{behalf.id}{PurePosixPath(name).suffix[:12]}" if name else name))
    return counts
