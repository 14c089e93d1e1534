"""Staff-side transitions: create, upload, submit, review internally, deliver."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal import audit
from portal.errors import IllegalTransition, Incomplete, InvalidInput, NotAllowed
from portal.extensions import db
from portal.files.render import request_render
from portal.files.storage import file_store
from portal.models import (
    APPROVED_STATES,
    Approver,
    Client,
    Contact,
    Deliverable,
    DeliverableState,
    InternalReview,
    Policy,
    Project,
    ReviewOutcome,
    ReviewRequest,
    User,
    Version,
    today_utc,
    utcnow,
)
from portal.permissions import require_staff
from portal.validation import single_line
from portal.workflow import policies
from portal.workflow.invitations import invite

S = DeliverableState
UPLOADABLE = {S.DRAFT, S.IN_REVIEW, S.READY, S.CHANGES_REQUESTED, *APPROVED_STATES}


def _touch(deliverable: Deliverable) -> None:
    deliverable.last_activity_at = utcnow()


# Each move's refusal as one sentence (translators need the verb with its object).
_CANNOT = {
    "submit": _l("You cannot submit “%(title)s” while it is %(state)s."),
    "review": _l("You cannot review “%(title)s” while it is %(state)s."),
    "send back": _l("You cannot send back “%(title)s” while it is %(state)s."),
    "deliver": _l("You cannot deliver “%(title)s” while it is %(state)s."),
}


def _move(deliverable: Deliverable, allowed: set[DeliverableState], target: DeliverableState,
          action: str) -> None:
    if deliverable.state not in allowed:
        raise IllegalTransition(str(_CANNOT[action]) % {
            "title": deliverable.title, "state": deliverable.state.label})
    deliverable.state = target
    _touch(deliverable)


def create_deliverable(
    actor: User, project: Project, title: str, description: str, due_date: date | None
) -> Deliverable:
    require_staff(actor)
    title = single_line(title, _("The title"), 200)
    deliverable = Deliverable(project=project, title=title, description=(description or "").strip(),
                              due_date=due_date, owner=project.owner, state=S.DRAFT)
    db.session.add(deliverable)
    audit.record(actor, "deliverable.created", deliverable, deliverable=deliverable, title=title,
                 project=project.name)
    return deliverable


def upload_version(
    actor: User, deliverable: Deliverable, stream: BinaryIO, file_name: str, what_changed: str
) -> Version:
    """Store the file and add it as the next version; the deliverable goes back to draft."""
    require_staff(actor)
    if deliverable.state not in UPLOADABLE:
        raise IllegalTransition(
            _("A request is out with the client. Cancel it before uploading a new version.")
        )
    config = current_app.config
    stored = file_store().ingest(stream, file_name, config["ACCEPTED_UPLOAD_TYPES"],
                                 config["MAX_UPLOAD_MB"] * 1024 * 1024)
    previous = deliverable.current_version
    version = Version(
        deliverable=deliverable, number=(previous.number + 1) if previous else 1,
        file_name=stored.file_name, media_type=stored.media_type, size=stored.size,
        sha256=stored.sha256, storage_key=stored.key,
        what_changed=(what_changed or "").strip(), uploaded_by=actor,
    )
    db.session.add(version)
    request_render(version)  # the viewer's page images, made by a job after the commit
    deliverable.state = S.DRAFT
    deliverable.reviewer = None
    _touch(deliverable)
    audit.record(actor, "version.uploaded", version, deliverable=deliverable,
                 number=version.number, file_name=version.file_name, sha256=version.sha256,
                 size=version.size, media_type=version.media_type)
    return version


def submit_for_review(actor: User, deliverable: Deliverable, reviewer: User | None = None) -> None:
    """Ask a colleague (or anyone on staff) for the internal review of the current version."""
    require_staff(actor)
    version = deliverable.current_version
    if deliverable.state == S.DRAFT and version is None:
        raise IllegalTransition(_("Upload a version before submitting it for internal review."))
    if reviewer is not None:
        if reviewer.id == version_uploader_id(deliverable):
            raise InvalidInput(_("The reviewer must be someone other than the person who "
                                 "uploaded the version."))
        if not reviewer.can_change_work or not reviewer.active:
            raise InvalidInput(_("%(name)s cannot review work.", name=reviewer.name))
    _move(deliverable, {S.DRAFT}, S.IN_REVIEW, "submit")
    deliverable.reviewer = reviewer
    # The reviewer is emailed by the event's consumer (notifications/reactions.py).
    audit.record(actor, "deliverable.submitted", deliverable, deliverable=deliverable,
                 version=version.number, reviewer=reviewer.email if reviewer else None)


def version_uploader_id(deliverable: Deliverable) -> int | None:
    version = deliverable.current_version
    return version.uploaded_by_id if version else None


def review_internally(actor: User, deliverable: Deliverable, *, approve: bool,
                      note: str = "") -> InternalReview:
    """Mark the current version reviewed (-> ready) or send it back with a note (-> draft)."""
    require_staff(actor)
    version = deliverable.current_version
    if deliverable.state != S.IN_REVIEW or version is None:
        raise IllegalTransition(
            _("“%(title)s” is %(state)s, not waiting for an internal review.",
              title=deliverable.title, state=deliverable.state.label)
        )
    if actor.id == version.uploaded_by_id:
        raise NotAllowed(_("You uploaded this version, so a colleague has to review it."))
    note = (note or "").strip()
    if not approve and not note:
        raise InvalidInput(_("Say what needs to change when you send a version back."))
    outcome = ReviewOutcome.APPROVED if approve else ReviewOutcome.SENT_BACK
    review = InternalReview(version=version, reviewer=actor, outcome=outcome, note=note)
    db.session.add(review)
    _move(deliverable, {S.IN_REVIEW}, S.READY if approve else S.DRAFT,
          "review" if approve else "send back")
    audit.record(actor, f"version.review_{outcome.value}", review, deliverable=deliverable,
                 version=version.number, note=note)
    return review


def missing_for_delivery(deliverable: Deliverable, contacts: Sequence[Contact],
                         due_date: date | None, today: date) -> list[str]:
    """Everything that stops this delivery, all at once."""
    missing = []
    version = deliverable.current_version
    if version is None:
        missing.append(_("a version with a file"))
    elif version.internal_approval is None or deliverable.state != S.READY:
        missing.append(_("an internal review of the current version"))
    if not deliverable.description.strip():
        missing.append(_("a description of the deliverable"))
    if not contacts:
        missing.append(_("at least one approver"))
    else:
        missing.extend(_("an email address for %(name)s", name=c.name)
                       for c in contacts if not c.email)
    if due_date is None:
        missing.append(_("a due date"))
    elif due_date <= today:
        missing.append(_("a due date in the future"))
    return missing


@dataclass(frozen=True)
class ReminderPolicy:
    first_after_days: int
    every_days: int
    max_reminders: int

    def check(self) -> None:
        if not (0 <= self.first_after_days <= 30 and 1 <= self.every_days <= 30
                and 0 <= self.max_reminders <= 20):
            raise InvalidInput(_("Reminders: first after 0 to 30 business days, then every 1 "
                                 "to 30, at most 20."))


def _languages_switched_to(deliverable: Deliverable,
                           contacts: Sequence[Contact]) -> dict[int, str]:
    """The language each contact last switched to on this deliverable's review pages: a new
    version's page (and its emails) keeps speaking it."""
    rows = db.session.execute(
        select(Approver.contact_id, Approver.language).join(ReviewRequest)
        .join(Version, ReviewRequest.version_id == Version.id)
        .where(Version.deliverable_id == deliverable.id,
               Approver.contact_id.in_([c.id for c in contacts]),
               Approver.language.is_not(None))
        .order_by(Approver.id))
    return {contact_id: language for contact_id, language in rows}


def deliver(
    actor: User, deliverable: Deliverable, contacts: Sequence[Contact], policy: Policy,
    due_date: date | None, today: date | None = None,
    reminder_policy: ReminderPolicy | None = None, require_code: bool | None = None,
    required_approvals: int | None = None, changes_end_request: bool = False,
) -> ReviewRequest:
    """Send the reviewed current version to the chosen contacts for their decision.
    `require_code` None takes the client's default for the emailed-code step-up.
    `required_approvals` is K for Policy.AT_LEAST; `changes_end_request` is the "any one
    of" choice: a request for changes ends the request, or waits for the others."""
    require_staff(actor)
    if deliverable.state not in {S.DRAFT, S.IN_REVIEW, S.READY}:
        raise IllegalTransition(
            _("“%(title)s” is %(state)s; only a reviewed, ready deliverable can be delivered.",
              title=deliverable.title, state=deliverable.state.label)
        )
    client = deliverable.project.client
    # The client row, shared, until commit: a retention erasure holds it exclusively
    # (portal/people/erasure.py), so no request opens while one runs.
    db.session.execute(select(Client.id).where(Client.id == client.id)
                       .with_for_update(read=True))
    if any(c.client_id != client.id for c in contacts):
        raise NotAllowed(_("Approvers must be contacts of %(client)s.", client=client.name))
    if len({c.id for c in contacts}) != len(contacts):
        raise InvalidInput(_("Each contact can be an approver only once."))
    missing = missing_for_delivery(deliverable, contacts, due_date, today or today_utc())
    if missing:
        raise Incomplete(missing)
    chosen = policies.checked(policy, len(contacts), required_approvals, changes_end_request)
    assert due_date is not None
    version = deliverable.current_version
    config = current_app.config
    reminder_policy = reminder_policy or ReminderPolicy(
        config["REMINDER_FIRST_AFTER_DAYS"], config["REMINDER_EVERY_DAYS"],
        config["REMINDER_MAX"])
    reminder_policy.check()
    request = ReviewRequest(
        version=version, policy=chosen.policy, required_approvals=chosen.required_approvals,
        changes_end_request=chosen.changes_end_request, due_date=due_date, sent_by=actor,
        reminder_first_after_days=reminder_policy.first_after_days,
        reminder_every_days=reminder_policy.every_days,
        reminder_max=reminder_policy.max_reminders,
        require_code=client.require_code_default if require_code is None else require_code,
    )
    db.session.add(request)
    switched = _languages_switched_to(deliverable, contacts)
    for position, contact in enumerate(contacts, start=1):
        db.session.add(Approver(request=request, contact=contact, position=position,
                                language=switched.get(contact.id)))
    _move(deliverable, {S.READY}, S.DELIVERED, "deliver")
    now = utcnow()
    in_turn = chosen.policy == Policy.SEQUENTIAL
    for approver in request.approvers[:1] if in_turn else request.approvers:
        invite(approver, now)
    audit.record(actor, "request.delivered", request, deliverable=deliverable,
                 version=version.number, policy=chosen.policy.value,
                 required_approvals=chosen.required_approvals,
                 changes_end_request=chosen.changes_end_request,
                 policy_words=policies.recorded_words(request), due_date=due_date.isoformat(),
                 approvers=[c.email for c in contacts], require_code=request.require_code)
    return request
