"""Feedback across versions: a client's comment is a point followed from version to version.

Staff mark a client's point addressed in a later version of the same deliverable (with an
optional note) or won't change (with a reason the client sees); staff or the client reopen
it. Nothing is lost when a new version goes out: the points stay on the request they were
made on and later versions' pages list them. Every move is one audit event
(`point.addressed`, `point.wont_change`, `point.reopened`), like the conditions checklist.
"""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal import audit
from portal.database import lock_row
from portal.errors import IllegalTransition, InvalidInput, NotAllowed
from portal.extensions import db
from portal.i18n import in_language, portal_language
from portal.models import (
    Comment,
    Contact,
    Deliverable,
    PointStatus,
    RequestStatus,
    ReviewRequest,
    User,
    Version,
    utcnow,
)
from portal.permissions import require_staff
from portal.validation import single_line
from portal.workflow.on_screen import check_on_screen
from portal.workflow.resolutions import MAX_NOTE_LEN, checked_resolution

NEEDS_REASON = _l("Give the reason the client will see for not changing it.")


def _made_on(comment: Comment) -> Version:
    """The version the point was made on (older comments: their request's version)."""
    version_id = comment.version_id or comment.request.version_id
    return db.session.get(Version, version_id)


def _locked_point(comment: Comment) -> Comment:
    point = lock_row(Comment, comment.id)  # two colleagues at once: one wins
    if point is None or not point.is_client_point:
        raise InvalidInput(_("Only the client's own comments are tracked as points."))
    return point


def resolve_point(
    actor: User, comment: Comment, status: PointStatus, version: Version | None = None,
    note: str = "", now: datetime | None = None,
) -> Comment:
    """Staff mark a client's point addressed (in a newer version of the same deliverable
    than the one it was made on, with an optional note), won't change (with a reason the
    client sees), or open again (status OPEN)."""
    if not isinstance(actor, User):
        raise NotAllowed(_("Only the team can mark points addressed."))
    require_staff(actor)
    point = _locked_point(comment)
    made_on = _made_on(point)
    deliverable = made_on.deliverable
    now = now or utcnow()
    note = (note or "").strip()
    if status == PointStatus.OPEN:
        return _reopen(actor, point, made_on, note, now)
    if not point.point_open:
        raise IllegalTransition(_("This point is already marked %(how)s. Reopen it first.",
                                  how=point.resolution))
    if status != PointStatus.ADDRESSED and not note:
        raise InvalidInput(NEEDS_REASON)
    version, note = checked_resolution(
        status == PointStatus.ADDRESSED, version, made_on, note,
        choose=_("Choose the version that addresses the point."),
        later=_("A point made on version %(n)s is addressed in a later version of %(title)s.",
                n=made_on.number, title=deliverable.title))
    point.resolution_status, point.resolution_note = status, note
    point.resolved_in_version, point.resolved_by = version, actor
    point.resolved_at = now
    deliverable.last_activity_at = now
    audit.record(actor, f"point.{status.value}", point, deliverable=deliverable,
                 made_on=made_on.number, page=point.page,
                 version=version.number if version else None, note=note)
    return point


def _reopen(actor: User | Contact, point: Comment, made_on: Version, note: str,
            now: datetime) -> Comment:
    if point.point_open:
        raise IllegalTransition(_("This point is already open."))
    note = single_line(note, "The note", MAX_NOTE_LEN) if note else ""
    with in_language(portal_language()):  # the trail's words never follow the actor's
        was = point.resolution
    point.resolution_status, point.resolution_note = PointStatus.OPEN, ""
    point.resolved_in_version, point.resolved_by = None, None
    point.resolved_at = None
    deliverable = made_on.deliverable
    deliverable.last_activity_at = now
    audit.record(actor, "point.reopened", point, deliverable=deliverable,
                 made_on=made_on.number, page=point.page, was=was, note=note,
                 by_client=isinstance(actor, Contact))
    return point


def reopen_point(actor: User, comment: Comment, note: str = "",
                 now: datetime | None = None) -> Comment:
    """Staff open a resolved point again."""
    return resolve_point(actor, comment, PointStatus.OPEN, note=note, now=now)


NOT_YOURS = _l("You can only reopen points on your own review.")


def reopen_point_by_client(contact: Contact, comment: Comment | None, *,
                           current_request: ReviewRequest, seen_sha256: str | None,
                           now: datetime | None = None) -> Comment:
    """A client contact reopens one of their organisation's points, acting from the current
    request of the same deliverable with its version on screen."""
    if not isinstance(contact, Contact):
        raise NotAllowed(_("Only the client reopens points from the review page."))
    if comment is None:  # the same answer as someone else's: ids are not an oracle
        raise NotAllowed(NOT_YOURS)
    point = _locked_point(comment)
    made_on = _made_on(point)
    deliverable: Deliverable = made_on.deliverable
    if (contact.client_id != deliverable.project.client_id
            or current_request.version.deliverable_id != deliverable.id
            or all(a.contact_id != contact.id for a in current_request.approvers)):
        raise NotAllowed(NOT_YOURS)
    check_on_screen(current_request, contact, seen_sha256)
    if current_request.status != RequestStatus.OPEN:
        raise IllegalTransition(_("This request is %(status)s; points can no longer be "
                                  "reopened here.", status=current_request.status.label))
    return _reopen(contact, point, made_on, "", now or utcnow())
