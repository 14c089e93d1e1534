"""What the person saw: a client's decision or comment names the version on their screen.

Every client action carries the SHA-256 of the file its page showed. If that is not the
version of the request it acts on, or a newer request has since replaced that one, the
action is refused and nothing is recorded: a tab left open on version 1 can never approve
version 2.
"""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from portal.errors import DomainError
from portal.extensions import db
from portal.models import (
    Approver,
    Contact,
    Deliverable,
    ReviewRequest,
    Version,
)


class PageOutOfDate(DomainError):
    """409: the page shows something other than what is now up for decision."""

    def __init__(self, deliverable: Deliverable, version: Version,
                 current: Approver | None) -> None:
        self.deliverable, self.version, self.current = deliverable, version, current
        waiting = current is not None and current.awaiting_decision
        if waiting:
            message = _("This page is out of date: version %(n)s of %(title)s is waiting "
                        "for you. Nothing was recorded.", n=version.number,
                        title=deliverable.title)
        else:
            message = _("This page is out of date: version %(n)s of %(title)s is the current "
                        "one. Nothing was recorded.", n=version.number, title=deliverable.title)
        super().__init__(message)


def latest_request(deliverable_id: int) -> ReviewRequest:
    return db.session.scalars(
        select(ReviewRequest).join(Version).where(Version.deliverable_id == deliverable_id)
        .order_by(ReviewRequest.id.desc()).limit(1)).one()


def current_approver(approver: Approver) -> Approver | None:
    """This contact's place on the newest request for the same deliverable, if they have
    one and it is not this one: where an out-of-date page should send them."""
    latest = latest_request(approver.request.version.deliverable_id)
    if latest.id == approver.request_id:
        return None
    return next((a for a in latest.approvers if a.contact_id == approver.contact_id), None)


def check_current(request: ReviewRequest, contact: Contact,
                  seen_sha256: str | None = None, *, check_seen: bool = False) -> None:
    """Refuse if a newer request has replaced this one (and, with `check_seen`, unless the
    page showed this request's version)."""
    version = request.version
    latest = latest_request(version.deliverable_id)
    if latest.id == request.id and (not check_seen or seen_sha256 == version.sha256):
        return
    mine = next((a for a in latest.approvers if a.contact_id == contact.id), None)
    raise PageOutOfDate(version.deliverable, latest.version, mine)


def check_on_screen(request: ReviewRequest, contact: Contact, seen_sha256: str | None) -> None:
    """Refuse unless the page showed this request's version and nothing has replaced it."""
    check_current(request, contact, seen_sha256, check_seen=True)
