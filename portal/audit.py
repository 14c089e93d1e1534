"""The append-only, hash-chained audit trail, and the one place a domain event is said.

A domain function records what happened once (`record`); whatever follows from it (the
owner's email, a webhook) is a consumer registered with `on`, run in the same
transaction (see portal/notifications/reactions.py). Each event's hash covers its own
fields and the previous event's hash, so changing or deleting a row breaks the chain at
that row. The one sanctioned change is a retention erasure (portal/audit_erasure.py): a
later, chained and HMAC-signed event vouches for each row it rewrote.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text

from portal import bulk
from portal.extensions import db
from portal.models import AuditEvent, Contact, User, utcnow

GENESIS = "0" * 64
# Any fixed number works; it names the advisory lock that serialises appends on PostgreSQL.
_APPEND_LOCK = 7_231_000_001


Consumer = Callable[[Any, Any, AuditEvent], None]  # (actor, subject, event)
_consumers: dict[str, list[Consumer]] = {}


def on(*verbs: str) -> Callable[[Consumer], Consumer]:
    """Register a consumer of these events."""
    def register(consumer: Consumer) -> Consumer:
        for verb in verbs:
            listeners = _consumers.setdefault(verb, [])
            if consumer not in listeners:
                listeners.append(consumer)
        return consumer
    return register


def actor_of(actor: User | Contact | None) -> tuple[str, str]:
    if actor is None:
        return "system", "Signoff"
    if isinstance(actor, User):
        return f"user:{actor.id}", f"{actor.name} <{actor.email}>"
    return f"contact:{actor.id}", f"{actor.name} <{actor.email or 'no email'}>"


_HASHED = ("seq", "at", "actor", "actor_label", "verb", "subject_type", "subject_id",
           "deliverable_id", "detail", "prev_hash")


def _digest_of(fields: dict[str, Any]) -> str:
    """The hash of one event's fields, by name (one rule for record() and record_many())."""
    values = [fields[name] for name in _HASHED]
    values[1] = values[1].isoformat(timespec="microseconds")
    canonical = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _digest(event: AuditEvent) -> str:
    return _digest_of({name: getattr(event, name) for name in _HASHED})


def canonical_detail(detail: dict[str, Any]) -> str:
    """An event's detail as stored (and hashed): sorted, compact JSON."""
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)


def _locked_head() -> tuple[int, str]:
    """The last event's seq and hash, with appends serialised until the transaction ends:
    an advisory lock on PostgreSQL, the write lock BEGIN IMMEDIATE took on SQLite.
    Flushes pending rows first so subjects have ids."""
    session = db.session
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
    last = session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return (last.seq, last.hash) if last else (0, GENESIS)


def record(
    actor: User | Contact | None,
    verb: str,
    subject: Any,
    *,
    deliverable: Any = None,
    **detail: Any,
) -> AuditEvent:
    """Append one event. Flushes pending rows first so the subject has an id."""
    session = db.session
    seq, prev_hash = _locked_head()
    actor_key, actor_label = actor_of(actor)
    event = AuditEvent(
        seq=seq + 1,
        at=utcnow(),
        actor=actor_key,
        actor_label=actor_label,
        verb=verb,
        subject_type=type(subject).__tablename__,
        subject_id=subject.id,
        deliverable_id=deliverable.id if deliverable is not None else None,
        detail=canonical_detail(detail),
        prev_hash=prev_hash,
    )
    event.hash = _digest(event)
    session.add(event)
    session.flush()
    for consumer in _consumers.get(verb, ()):
        consumer(actor, subject, event)
    return event


@dataclass(frozen=True)
class Entry:
    """One event of a bulk append: its subject by id, as record() takes it by object."""

    subject_id: int
    deliverable_id: int | None
    detail: dict[str, Any]


def record_many(actor: User | Contact | None, verb: str, subject_model: Any,
                entries: Sequence[Entry]) -> int:
    """Append one event per entry, in order, as that many record() calls would: the same
    fields and chain, the same consumers called (with the subjects loaded), but the chain
    computed here under record()'s lock and the rows written in one statement."""
    if not entries:
        return 0
    session = db.session
    seq, prev_hash = _locked_head()
    actor_key, actor_label = actor_of(actor)
    at, subject_type = utcnow(), subject_model.__tablename__
    rows = []
    for entry in entries:
        seq += 1
        row = {"seq": seq, "at": at, "actor": actor_key, "actor_label": actor_label,
               "verb": verb, "subject_type": subject_type, "subject_id": entry.subject_id,
               "deliverable_id": entry.deliverable_id,
               "detail": canonical_detail(entry.detail), "prev_hash": prev_hash}
        row["hash"] = prev_hash = _digest_of(row)
        rows.append(row)
    bulk.insert_all(AuditEvent.__table__, rows)
    consumers = _consumers.get(verb, ())
    if consumers:
        events = session.scalars(select(AuditEvent).where(
            AuditEvent.seq.between(rows[0]["seq"], rows[-1]["seq"])).order_by(AuditEvent.seq))
        subjects = {s.id: s for s in session.scalars(select(subject_model).where(
            subject_model.id.in_({e.subject_id for e in entries})))}
        for event in events:
            for consumer in consumers:
                consumer(actor, subjects[event.subject_id], event)
    return len(rows)


@dataclass(frozen=True)
class ChainReport:
    checked: int
    bad_seq: int | None = None
    problem: str = ""
    # erasure event seq -> how many rows it rewrote that were accepted on its word
    accepted: dict[int, int] = field(default_factory=dict)
    rejected_erasures: list[int] = field(default_factory=list)  # forged or changed

    @property
    def ok(self) -> bool:
        return self.bad_seq is None

def _walk(batch_size: int = 1000) -> Iterator[AuditEvent]:
    after = 0
    while True:
        batch = db.session.scalars(
            select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq)
            .limit(batch_size)
        ).all()
        if not batch:
            return
        yield from batch
        after = batch[-1].seq


def verify_chain(keys: Sequence[bytes] | None = None) -> ChainReport:
    """Walk the whole chain; report the first row that does not hold. A row a retention
    erasure rewrote is held to the digest that (genuine, HMAC-signed) erasure recorded;
    `keys` are the erasure HMAC keys (default: from the app's SECRET_KEY and fallbacks)."""
    from portal import audit_erasure as erasures

    expected_prev, expected_seq, checked = GENESIS, 1, 0
    vouchers = erasures.read_vouchers(
        erasures.app_erasure_keys() if keys is None else keys)
    accepted: dict[int, int] = {}
    for event in _walk():
        if event.seq != expected_seq:
            return ChainReport(checked, expected_seq, f"event {expected_seq} is missing")
        if event.prev_hash != expected_prev:
            return ChainReport(checked, event.seq, "does not follow the event before it")
        if _digest(event) != event.hash:
            if not vouchers.accepts(event):
                return ChainReport(checked, event.seq, "was changed after it was written"
                                   + vouchers.why_not(event.seq),
                                   rejected_erasures=vouchers.rejected)
            by = vouchers.by[event.seq]
            accepted[by] = accepted.get(by, 0) + 1
        expected_prev, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    return ChainReport(checked, accepted=accepted, rejected_erasures=vouchers.rejected)


def head_hash() -> str:
    last = db.session.scalar(select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1))
    return last or GENESIS


# Events only staff may see (internal notes): what reaches a client, including the
# certificate every party downloads, is the trail without them.
STAFF_ONLY_VERBS = frozenset({"comment.internal"})


def client_visible(events: list[AuditEvent]) -> list[AuditEvent]:
    return [e for e in events if e.verb not in STAFF_ONLY_VERBS]


# Lazy: each use reads in the language of the page, email or certificate being rendered.
VERB_LABELS = {
    "user.created": _l("Account created"),
    "client.created": _l("Client created"),
    "contact.added": _l("Contact added"),
    "project.created": _l("Project created"),
    "deliverable.created": _l("Deliverable created"),
    "deliverable.edited": _l("Details edited"),
    "version.uploaded": _l("Version uploaded"),
    "deliverable.submitted": _l("Submitted for internal review"),
    "version.review_approved": _l("Internal review: approved"),
    "version.review_sent_back": _l("Internal review: sent back"),
    "request.delivered": _l("Delivered to the client"),
    "request.cancelled": _l("Request cancelled"),
    "request.approved": _l("Approved by everyone"),
    "request.approved_with_conditions": _l("Approved, with conditions"),
    "decision.approved": _l("Client approved"),
    "decision.approved_with_conditions": _l("Client approved with conditions"),
    "decision.rejected": _l("Client requested changes"),
    "decision.classified": _l("Requested changes classified"),
    "decision.reclassified": _l("Classification of requested changes corrected"),
    "decision.on_behalf": _l("Decision recorded on the client's behalf"),
    "condition.met": _l("Condition marked met"),
    "condition.wont_do": _l("Condition marked won't do"),
    "condition.reopened": _l("Condition reopened"),
    "point.addressed": _l("Client's point marked addressed"),
    "point.wont_change": _l("Client's point marked won't change"),
    "point.reopened": _l("Client's point reopened"),
    "request.changes_requested": _l("Changes requested"),
    "request.expired": _l("Expired without a decision"),
    "request.viewed": _l("Viewed by the client"),
    "request.escalated": _l("Overdue: owner alerted"),
    "reminder.sent": _l("Reminder sent"),
    "link.resent": _l("Review link sent again"),
    "link.revoked": _l("Review link revoked"),
    "link.renewal_requested": _l("New review link requested"),
    "observer.added": _l("Observer added (can view only)"),
    "observer.revoked": _l("Observer's link revoked"),
    "observer.link_resent": _l("Observer's link sent again"),
    "decision_code.sent": _l("One-time code sent"),
    "decision_code.confirmed": _l("One-time code confirmed"),
    "comment.posted": _l("Comment posted"),
    "comment.internal": _l("Internal note"),
    "certificate.issued": _l("Certificate issued"),
    "email.retried": _l("Email sent again"),
    "contact.updated": _l("Contact updated"),
    "client.timezone": _l("Client's time zone changed"),
    "client.code_default": _l("Client's one-time code default changed"),
    "client.language": _l("Client's default language changed"),
    "user.language": _l("Language of the staff pages changed"),
    "agency.updated": _l("Agency details changed"),
    "agency.logo_set": _l("Agency logo set"),
    "agency.logo_removed": _l("Agency logo removed"),
    "user.updated": _l("Account updated"),
    "user.signed_out": _l("Signed out"),
    "api_token.created": _l("API token created"),
    "api_token.revoked": _l("API token revoked"),
    "webhook.registered": _l("Webhook registered"),
    "webhook.enabled": _l("Webhook switched on"),
    "webhook.disabled": _l("Webhook switched off"),
    "webhook.resent": _l("Webhook sent again"),
    "webhook.secret_rotated": _l("Webhook secret rotated"),
    "delegation.requested": _l("Hand-over to a colleague asked for"),
    "delegation.confirmed": _l("Handed over to a colleague"),
    "delegation.declined": _l("Hand-over to a colleague declined"),
    "client.direct_handover": _l("Client's hand-over setting changed"),
    "client.erased": _l("Former client's personal data erased"),
}


def describe(verb: str) -> str:
    """The event in words, in the language being rendered (the labels are lazy)."""
    label = VERB_LABELS.get(verb)
    return str(label) if label is not None else verb.replace(".", ": ").replace(
        "_", " ").capitalize()
