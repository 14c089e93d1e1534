"""Who holds a working link: resend, revoke, renew, and the first look."""
from __future__ import annotations

from flask import current_app

from portal import audit, mail, reminders, webhooks
from portal.directory import require_staff
from portal.errors import IllegalTransition
from portal.models import Approver, ApproverStatus, RequestStatus, User, utcnow
from portal.workflow.lifecycle import email_review_link


def _deliverable(approver: Approver):
    return approver.request.version.deliverable


def _require_open(approver: Approver) -> None:
    if approver.request.status != RequestStatus.OPEN:
        raise IllegalTransition(f"This request is {approver.request.status.label}.")


def resend_link(actor: User, approver: Approver) -> None:
    """A fresh link by email; every older link of this approver stops working."""
    require_staff(actor)
    _require_open(approver)
    if approver.status != ApproverStatus.INVITED:
        raise IllegalTransition(f"{approver.contact.name} is {approver.status.label}; there is "
                                "no link to resend.")
    approver.link_generation += 1
    if approver.link_revoked_at is not None:  # a resend after a revoke restarts the chasing
        approver.link_revoked_at = None
        reminders.schedule_first(approver, utcnow())
    audit.record(actor, "link.resent", approver, deliverable=_deliverable(approver),
                 approver=approver.contact.email, generation=approver.link_generation)
    _email_link(approver, reason="resent")


def revoke_link(actor: User, approver: Approver) -> None:
    """Every link of this approver stops working, and no reminder sends a new one."""
    require_staff(actor)
    approver.link_generation += 1
    approver.link_revoked_at = utcnow()
    approver.next_reminder_at = None
    audit.record(actor, "link.revoked", approver, deliverable=_deliverable(approver),
                 approver=approver.contact.email, generation=approver.link_generation)


def send_fresh_link(approver: Approver) -> None:
    """The approver asked for a new link after theirs expired.

    It goes to the address on file, never to one typed in, and the owner is told.
    """
    _require_open(approver)
    if approver.status not in (ApproverStatus.INVITED, ApproverStatus.QUEUED):
        raise IllegalTransition("Your decision is recorded; there is nothing left to do here.")
    deliverable = _deliverable(approver)
    audit.record(approver.contact, "link.renewal_requested", approver, deliverable=deliverable,
                 approver=approver.contact.email)
    stamp = utcnow().strftime("%Y%m%d%H%M%S%f")
    _email_link(approver, reason="renewed", key_suffix=stamp)
    owner = deliverable.owner
    mail.compose(
        to_addr=owner.email, to_name=owner.name, template="link_renewed",
        idempotency_key=f"link-renewed:{approver.id}:{stamp}", deliverable_id=deliverable.id,
        deliverable=deliverable, approver=approver,
        url=f"{current_app.config['PUBLIC_BASE_URL']}/deliverables/{deliverable.id}",
    )


def _email_link(approver: Approver, reason: str, key_suffix: str = "") -> None:
    email_review_link(
        approver, f"invite:{approver.id}:{approver.link_generation}:{reason}{key_suffix}")


def record_view(approver: Approver, *, ip: str = "", user_agent: str = "") -> bool:
    """Called by the page after it loads (never by the link's GET, which scanners send).

    Returns True the first time; later views only update last_viewed_at.
    """
    first = approver.last_viewed_at is None
    approver.last_viewed_at = utcnow()
    if first:
        audit.record(approver.contact, "request.viewed", approver.request,
                     deliverable=_deliverable(approver), ip=ip[:64], user_agent=user_agent[:200])
        webhooks.emit("request.viewed", {"viewer": {"name": approver.contact.name,
                                                    "email": approver.contact.email},
                                         **webhooks.request_data(approver.request)})
    return first
