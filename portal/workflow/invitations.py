"""Who holds a working link: the invitation, resend, revoke, renewal, and the first look.

Every email with a link goes through links.send_review_link, which also renews the
link's lifetime; the owner hears of a renewal through the event it records.
"""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _

from portal import audit
from portal.errors import IllegalTransition
from portal.extensions import db
from portal.models import Approver, ApproverStatus, Deliverable, RequestStatus, User, utcnow
from portal.permissions import require_staff
from portal.workflow import reminders
from portal.workflow.links import send_review_link
from portal.workflow.on_screen import check_on_screen


def _deliverable(approver: Approver) -> Deliverable:
    return approver.request.version.deliverable


def _require_open(approver: Approver) -> None:
    if approver.request.status != RequestStatus.OPEN:
        raise IllegalTransition(_("This request is %(status)s.",
                                  status=approver.request.status.label))


def _invitation_key(approver: Approver, reason: str = "") -> str:
    return f"invite:{approver.id}:{approver.link_generation}{':' + reason if reason else ''}"


def invite(approver: Approver, now: datetime) -> None:
    """It is this approver's turn: email them their link and start the reminders."""
    approver.status = ApproverStatus.INVITED
    approver.invited_at = now
    db.session.flush()  # the approver's id names the invitation email
    reminders.schedule_first(approver, now)
    send_review_link(approver, now, idempotency_key=_invitation_key(approver))


def resend_link(actor: User, approver: Approver, now: datetime | None = None) -> None:
    """A fresh link by email; every older link of this approver stops working."""
    require_staff(actor)
    _require_open(approver)
    if approver.status != ApproverStatus.INVITED:
        raise IllegalTransition(_("%(name)s is %(status)s; there is no link to resend.",
                                  name=approver.contact.name, status=approver.status.label))
    now = now or utcnow()
    approver.link_generation += 1
    if approver.link_revoked_at is not None:  # a resend after a revoke restarts the chasing
        approver.link_revoked_at = None
        reminders.schedule_first(approver, now)
    audit.record(actor, "link.resent", approver, deliverable=_deliverable(approver),
                 approver=approver.contact.email, generation=approver.link_generation)
    send_review_link(approver, now, idempotency_key=_invitation_key(approver, "resent"))


def revoke_link(actor: User, approver: Approver, now: datetime | None = None) -> None:
    """Every link of this approver stops working, and no reminder sends a new one."""
    require_staff(actor)
    approver.link_generation += 1
    approver.link_revoked_at = now or utcnow()
    approver.next_reminder_at = None
    audit.record(actor, "link.revoked", approver, deliverable=_deliverable(approver),
                 approver=approver.contact.email, generation=approver.link_generation)


def send_fresh_link(approver: Approver, now: datetime | None = None) -> None:
    """The approver asked for a new link after theirs expired.

    It goes to the address on file, never to one typed in, and the owner is told.
    """
    _require_open(approver)
    if approver.status not in (ApproverStatus.INVITED, ApproverStatus.QUEUED):
        raise IllegalTransition(_("Your decision is recorded; there is nothing left to do "
                                  "here."))
    now = now or utcnow()
    event = audit.record(approver.contact, "link.renewal_requested", approver,
                         deliverable=_deliverable(approver), approver=approver.contact.email)
    send_review_link(approver, now, idempotency_key=_invitation_key(approver,
                                                                    f"renewed{event.seq}"))


def record_view(approver: Approver, *, seen_sha256: str | None, ip: str = "",
                user_agent: str = "", now: datetime | None = None) -> bool:
    """Called by the page after it loads (never by the link's GET, which scanners send),
    naming the version it shows.

    Returns True the first time; later views only update last_viewed_at.
    """
    check_on_screen(approver.request, approver.contact, seen_sha256)
    first = approver.last_viewed_at is None
    approver.last_viewed_at = now or utcnow()
    if first:
        audit.record(approver.contact, "request.viewed", approver.request,
                     deliverable=_deliverable(approver), ip=ip[:64], user_agent=user_agent[:200])
    return first
