"""Hand-over ("I'm not the right person"): an approver names a colleague, who decides in
the same position once staff confirm it (or at once, when the client allows it).

The colleague becomes a new approver at the original's position with the original's turn
(invited now if the original was invited, queued if queued). The original is DELEGATED:
left out of `ReviewRequest.approvers`, so every count, turn and list reads the colleague in
their place, and their link generation moves on, so their link can no longer act. Every step
is an audit event ("delegation.requested", "delegation.confirmed", "delegation.declined");
the emails follow from those events (notifications/handover.py). Functions take the acting
person and the time, flush, and leave the commit to the caller.
"""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import func, select

from portal import audit
from portal.database import lock_row
from portal.errors import IllegalTransition, InvalidInput
from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    Client,
    Contact,
    Delegation,
    DelegationStatus,
    Deliverable,
    RequestStatus,
    ReviewRequest,
    User,
    Version,
)
from portal.notifications import handover  # noqa: F401  (registers the emails it sets off)
from portal.people.accounts import normalise_email
from portal.permissions import require_staff
from portal.validation import single_line
from portal.workflow import reminders
from portal.workflow.links import send_review_link

MAX_NOTE = 2000
AWAITING = (ApproverStatus.INVITED, ApproverStatus.QUEUED)


def pending_for(approver: Approver) -> Delegation | None:
    """The hand-over this approver asked for that staff have yet to confirm or decline."""
    return db.session.scalar(select(Delegation).where(
        Delegation.from_approver_id == approver.id,
        Delegation.status == DelegationStatus.REQUESTED))


def handed_over_by(approver: Approver) -> Delegation | None:
    """The confirmed hand-over that took this approver's place away, if any."""
    if approver.status != ApproverStatus.DELEGATED:
        return None
    return db.session.scalar(select(Delegation).where(
        Delegation.from_approver_id == approver.id,
        Delegation.status == DelegationStatus.CONFIRMED))


def of_request(request_id: int) -> list[Delegation]:
    return list(db.session.scalars(select(Delegation).where(
        Delegation.request_id == request_id).order_by(Delegation.id)))


def of_deliverable(deliverable_id: int) -> list[Delegation]:
    """Every hand-over on this deliverable's requests, newest first (the staff page)."""
    return list(db.session.scalars(
        select(Delegation).join(ReviewRequest, Delegation.request_id == ReviewRequest.id)
        .join(Version, ReviewRequest.version_id == Version.id)
        .where(Version.deliverable_id == deliverable_id).order_by(Delegation.id.desc())))


def _deliverable(request: ReviewRequest) -> Deliverable:
    return request.version.deliverable


def _still_handing_over(approver: Approver, request: ReviewRequest) -> None:
    """The request is open and the approver has yet to decide; else why not."""
    if request.status != RequestStatus.OPEN:
        raise IllegalTransition(_("This request is closed, so it can no longer be handed "
                                  "over."))
    if approver.status == ApproverStatus.DELEGATED:
        raise IllegalTransition(_("This request was already handed over to a colleague."))
    if approver.status not in AWAITING:
        raise IllegalTransition(_("The decision is recorded, so the request can no longer "
                                  "be handed over."))


def _colleague(approver: Approver, request: ReviewRequest, name: str,
               email: str) -> tuple[str, str]:
    """The colleague's name and address, checked: a real address, not the approver's own,
    and nobody already asked on this request (handed-over approvers included)."""
    name = single_line(name, _("Your colleague's name"), 120)
    if not (email or "").strip():
        raise InvalidInput(_("Enter your colleague's email address."))
    address = normalise_email(email)
    if address == (approver.contact.email or "").lower():
        raise InvalidInput(_("That is your own address: enter your colleague's."))
    _not_yet_asked(request, address)
    return name, address


def _not_yet_asked(request: ReviewRequest, address: str) -> None:
    """Nobody with this address decides on or follows the request already (asked again
    when staff confirm: another hand-over may have named the same colleague meanwhile)."""
    asked = {(a.contact.email or "").lower() for a in request.all_approvers}
    if address in asked:
        raise InvalidInput(_("%(email)s is already asked to decide on this request.",
                             email=address))
    if any((o.contact.email or "").lower() == address for o in request.observers):
        raise InvalidInput(_("%(email)s follows this request as an observer, so they cannot "
                             "also decide on it.", email=address))


def goes_through_directly(approver: Approver) -> bool:
    """The client lets its contacts hand over without the team — except on a request that
    asks for an emailed code: there the team confirms every hand-over."""
    return approver.contact.client.direct_handover and not approver.request.require_code


def ask_to_delegate(approver: Approver, name: str, email: str, note: str,
                    at: datetime) -> Delegation:
    """The approver names a colleague to decide instead. Staff confirm it, unless the
    client lets its contacts hand over directly: then the colleague decides at once — but
    never on a request that asks for an emailed code, where a hand-over to an address of the
    link-holder's choosing would get round the code: staff confirm those."""
    request = lock_row(ReviewRequest, approver.request_id)  # serialised with decisions
    db.session.refresh(approver)
    _still_handing_over(approver, request)
    waiting = pending_for(approver)
    if waiting is not None:
        raise IllegalTransition(_("You already asked to hand this over to %(name)s; the team "
                                  "will confirm it.", name=waiting.name))
    name, address = _colleague(approver, request, name, email)
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise InvalidInput(_("Please keep the note under %(num)d characters.", num=MAX_NOTE))
    direct = goes_through_directly(approver)
    delegation = Delegation(request_id=request.id, from_approver_id=approver.id, name=name,
                            email=address, note=note, requested_at=at)
    db.session.add(delegation)
    audit.record(approver.contact, "delegation.requested", delegation,
                 deliverable=_deliverable(request), by=approver.contact.name, to=name,
                 to_email=address, note=note, direct=direct)
    if direct:
        _hand_over(delegation, None, at)
    return delegation


def confirm(delegation: Delegation, by_user: User, at: datetime) -> Approver:
    """Staff confirm a hand-over: the colleague decides in the same position."""
    require_staff(by_user)
    return _hand_over(_decidable(delegation), by_user, at)


def decline(delegation: Delegation, by_user: User, at: datetime) -> None:
    """Staff keep the original approver; they are told, and their link works as before."""
    require_staff(by_user)
    delegation = _decidable(delegation, closed_ok=True)
    delegation.status = DelegationStatus.DECLINED
    delegation.decided_at, delegation.decided_by_id = at, by_user.id
    audit.record(by_user, "delegation.declined", delegation,
                 deliverable=_deliverable(delegation.request),
                 by=delegation.from_approver.contact.name, to=delegation.name,
                 to_email=delegation.email)


def _decidable(delegation: Delegation, *, closed_ok: bool = False) -> Delegation:
    """The hand-over, locked with its request, still waiting for staff."""
    request = lock_row(ReviewRequest, delegation.request_id)
    db.session.refresh(delegation)
    if delegation.status != DelegationStatus.REQUESTED:
        raise IllegalTransition(
            _("This hand-over was already confirmed.")
            if delegation.status == DelegationStatus.CONFIRMED
            else _("This hand-over was already declined."))
    if not closed_ok:
        db.session.refresh(delegation.from_approver)
        _still_handing_over(delegation.from_approver, request)
        _not_yet_asked(request, delegation.email)
    return delegation


def _contact_for(client: Client, name: str, address: str, original: Contact,
                 actor: User | Contact) -> Contact:
    """The client's contact with this address, or a new one. A new contact reads the
    client's language; when the client has none, the colleague's (who named them)."""
    contact = db.session.scalar(select(Contact).where(
        Contact.client_id == client.id, func.lower(Contact.email) == address))
    if contact is not None:
        return contact
    language = None if client.language else original.language
    contact = Contact(client_id=client.id, name=name, email=address, language=language)
    db.session.add(contact)
    audit.record(actor, "contact.added", contact, client_id=client.id, name=name,
                 email=address, language=language, via="delegation")
    return contact


def _hand_over(delegation: Delegation, by_user: User | None, at: datetime) -> Approver:
    original = delegation.from_approver
    request = delegation.request
    actor: User | Contact = by_user or original.contact
    contact = _contact_for(original.contact.client, delegation.name, delegation.email,
                           original.contact, actor)
    invited = original.status == ApproverStatus.INVITED
    colleague = Approver(request_id=request.id, contact=contact, position=original.position,
                         status=ApproverStatus.QUEUED)
    db.session.add(colleague)
    original.status = ApproverStatus.DELEGATED
    original.link_generation += 1  # the original's link can no longer act
    original.next_reminder_at = None
    db.session.flush()
    db.session.expire(request, ["approvers", "all_approvers"])  # read again: the colleague in
    delegation.status = DelegationStatus.CONFIRMED
    delegation.decided_at, delegation.to_approver_id = at, colleague.id
    delegation.decided_by_id = by_user.id if by_user else None
    audit.record(actor, "delegation.confirmed", delegation, deliverable=_deliverable(request),
                 by=original.contact.name, to=contact.name, to_email=contact.email,
                 direct=by_user is None)
    if invited:  # their turn now, as it was the original's: the link, with the note
        colleague.status = ApproverStatus.INVITED
        colleague.invited_at = at
        reminders.schedule_first(colleague, at)
        send_review_link(colleague, at, template="delegation_invitation",
                         idempotency_key=f"invite:{colleague.id}:{colleague.link_generation}",
                         delegation=delegation, delegator=original.contact)
    return colleague


def set_direct_handover(actor: User, client: Client, allowed: bool) -> None:
    """Whether this client's contacts may hand a request over without staff confirming."""
    require_staff(actor)
    if client.direct_handover != allowed:
        client.direct_handover = allowed
        audit.record(actor, "client.direct_handover", client, allowed=allowed)
