"""Observers (CC): contacts a request keeps informed. They open the review page read-only,
comment only when staff allow it, hear the outcome, and never decide.

Their links are signed, expiring and revocable like an approver's (workflow/links.py), but
under a purpose of their own (SALT): an observer's token never verifies as an approver's,
nor the other way round. `send_observer_link` is the only code that emails one.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal import audit
from portal.errors import IllegalTransition, InvalidInput, NotAllowed
from portal.extensions import db
from portal.models import Comment, Contact, Observer, RequestStatus, ReviewRequest, User
from portal.notifications.compose import compose
from portal.permissions import require_staff
from portal.urls import external_url
from portal.workflow.comments import post_comment
from portal.workflow.links import LinkState, renewed_until
from portal.workflow.on_screen import check_on_screen
from portal.workflow.pins import Pin

SALT = "signoff.observer-link.v1"  # not the approvers' salt: neither token verifies as the other


@dataclass(frozen=True)
class ObserverCheck:
    observer: Observer
    state: LinkState
    generation: Any
    signed_at: datetime


def _serializer() -> URLSafeTimedSerializer:
    config = current_app.config
    keys = [*config.get("SECRET_KEY_FALLBACKS", []), config["SECRET_KEY"]]
    return URLSafeTimedSerializer(keys, salt=SALT)


def issue_token(observer: Observer) -> str:
    return _serializer().dumps({"o": observer.public_id, "g": observer.link_generation})


def observer_link(observer: Observer) -> str:
    return external_url("client.observer_link", token=issue_token(observer))


def link_state(observer: Observer, generation: Any, now: datetime) -> LinkState:
    """What a link of this generation is worth at `now`."""
    if generation != observer.link_generation or observer.link_revoked_at is not None:
        return LinkState.REVOKED
    if observer.link_expires_at is not None and now > observer.link_expires_at:
        return LinkState.EXPIRED
    return LinkState.VALID


def check_token(token: str, now: datetime) -> ObserverCheck | None:
    """What an observer's token grants; None for a tampered, foreign (an approver's
    included) or unknown token."""
    try:
        payload, signed_at = _serializer().loads(token, return_timestamp=True)
    except BadData:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("o"), str):
        return None
    observer = by_public_id(payload["o"])
    if observer is None:
        return None
    generation = payload.get("g")
    return ObserverCheck(observer, link_state(observer, generation, now), generation, signed_at)


def by_public_id(public_id: Any) -> Observer | None:
    if not isinstance(public_id, str):
        return None
    return db.session.scalar(
        select(Observer).where(Observer.public_id == public_id)
        .options(joinedload(Observer.contact).joinedload(Contact.client),
                 joinedload(Observer.request)))


def send_observer_link(observer: Observer, now: datetime, *, idempotency_key: str,
                       template: str = "observer_invitation", **context: Any) -> None:
    """Email the observer their link (the invitation, a resend, the outcome), good for the
    request's link lifetime from `now`."""
    request = observer.request
    deliverable = request.version.deliverable
    observer.link_expires_at = renewed_until(now, request.link_ttl_days)
    compose(to_addr=observer.contact.email or "", to_name=observer.contact.name,
            template=template, idempotency_key=idempotency_key,
            deliverable_id=deliverable.id, reply_to=deliverable.owner.email,
            deliverable=deliverable, version=request.version, request=request,
            observer=observer, sender=request.sent_by, url=observer_link(observer), **context)


def _key(observer: Observer, reason: str) -> str:
    return f"observer:{observer.id}:{observer.link_generation}:{reason}"


def _require_open(request: ReviewRequest) -> None:
    if request.status != RequestStatus.OPEN:
        raise IllegalTransition(_("This request is %(status)s; observers can be added only "
                                  "while it is out with the client.",
                                  status=request.status.label))


def add_observer(request: ReviewRequest, contact: Contact, may_comment: bool, by_user: User,
                 at: datetime) -> Observer:
    """Keep `contact` informed of this request: they get a link to the review page that
    can look (and comment when `may_comment`) but never decide."""
    require_staff(by_user)
    _require_open(request)
    client = request.version.deliverable.project.client
    if contact.client_id != client.id:
        raise NotAllowed(_("Observers must be contacts of %(client)s.", client=client.name))
    if not contact.email:
        raise InvalidInput(_("%(name)s has no email address, so they cannot be kept "
                             "informed.", name=contact.name))
    if any(a.contact_id == contact.id for a in request.approvers):
        raise InvalidInput(_("%(name)s is an approver of this request, so they cannot also "
                             "be an observer.", name=contact.name))
    if any(o.contact_id == contact.id for o in request.observers):
        raise InvalidInput(_("%(name)s already follows this request.", name=contact.name))
    observer = Observer(request=request, contact=contact, may_comment=may_comment,
                        added_by=by_user, added_at=at)
    db.session.add(observer)
    db.session.flush()  # its id names the invitation email
    audit.record(by_user, "observer.added", observer, deliverable=request.version.deliverable,
                 request=request.id, observer=contact.email, may_comment=may_comment)
    send_observer_link(observer, at, idempotency_key=_key(observer, "invited"))
    return observer


def contacts_by_id(raw_ids: Sequence[str]) -> list[Contact]:
    """The contacts a form names by id (the delivery form's "Also keep informed")."""
    chosen = []
    for raw in raw_ids:
        contact = db.session.get(Contact, int(raw)) if raw.isdigit() else None
        if contact is None:
            raise InvalidInput(_("One of the chosen contacts no longer exists."))
        chosen.append(contact)
    return chosen


def add_observers(request: ReviewRequest, contacts: Sequence[Contact], may_comment: bool,
                  by_user: User, at: datetime) -> list[Observer]:
    """Several at once (the delivery form's "Also keep informed" contacts)."""
    if len({c.id for c in contacts}) != len(contacts):
        raise InvalidInput(_("Each contact can be an observer only once."))
    return [add_observer(request, c, may_comment, by_user, at) for c in contacts]


def revoke_observer(actor: User, observer: Observer, at: datetime) -> None:
    """Every link of this observer stops working; they hear of nothing more."""
    require_staff(actor)
    observer.link_generation += 1
    observer.link_revoked_at = at
    audit.record(actor, "observer.revoked", observer,
                 deliverable=observer.request.version.deliverable,
                 observer=observer.contact.email, generation=observer.link_generation)


def resend_observer_link(actor: User, observer: Observer, at: datetime) -> None:
    """A fresh link by email (a revoked observer is back); every older link stops working."""
    require_staff(actor)
    if observer.request.status == RequestStatus.CANCELLED:
        raise IllegalTransition(_("This request was cancelled; its links stay dead."))
    observer.link_generation += 1
    observer.link_revoked_at = None
    audit.record(actor, "observer.link_resent", observer,
                 deliverable=observer.request.version.deliverable,
                 observer=observer.contact.email, generation=observer.link_generation)
    # After the close, the email that carries the link says how the request ended.
    template = ("observer_invitation" if observer.request.status == RequestStatus.OPEN
                else "observer_outcome")
    send_observer_link(observer, at, idempotency_key=_key(observer, "resent"),
                       template=template)


def record_observer_view(observer: Observer, *, seen_sha256: str | None, at: datetime) -> None:
    """The page's beacon after it loads (never the link's GET): when they last looked."""
    check_on_screen(observer.request, observer.contact, seen_sha256)
    observer.last_viewed_at = at


def observer_comment(observer: Observer, body: str, *, seen_sha256: str | None,
                     pin: Pin | None, at: datetime) -> Comment:
    """A comment from an observer staff allowed to comment; anyone else is refused."""
    if not observer.may_comment:
        raise NotAllowed(_("You can follow this review, but the team has not asked for "
                           "your comments here. Reply to the email to reach them."))
    return post_comment(observer.contact, observer.request, body, seen_sha256=seen_sha256,
                        pin=pin, now=at)


# Every ending an observer hears of (emails/observer_outcome.* says each in words).
OUTCOMES = frozenset({RequestStatus.APPROVED, RequestStatus.APPROVED_WITH_CONDITIONS,
                      RequestStatus.CHANGES_REQUESTED, RequestStatus.EXPIRED,
                      RequestStatus.CANCELLED})


def tell_outcome(request: ReviewRequest, at: datetime) -> None:
    """Each observer whose link was not revoked hears once how the request ended. The
    email carries their link (renewed) so they can read the outcome, except after a
    cancellation, whose links are dead like the approvers'."""
    if request.status not in OUTCOMES:
        return
    for observer in request.observers:
        if observer.link_revoked_at is not None or not observer.contact.email:
            continue
        key = f"observer-outcome:{observer.id}:{request.status.value}"
        if request.status == RequestStatus.CANCELLED:
            observer.link_generation += 1
            deliverable = request.version.deliverable
            compose(to_addr=observer.contact.email, to_name=observer.contact.name,
                    template="observer_outcome", idempotency_key=key,
                    deliverable_id=deliverable.id, reply_to=deliverable.owner.email,
                    deliverable=deliverable, version=request.version, request=request,
                    observer=observer, url="")
            continue
        send_observer_link(observer, at, idempotency_key=key, template="observer_outcome")
