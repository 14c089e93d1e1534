"""The contact's receipt for a decision staff recorded on their behalf: what was recorded,
by whom, and how and when they gave it, so a mistake is caught by the person it names."""
from __future__ import annotations

from portal.models import Decision
from portal.notifications.compose import compose


def on_behalf_receipt(decision: Decision) -> None:
    """One email to the contact, in their language and zone (compose picks both)."""
    approver = decision.approver
    contact, request = approver.contact, approver.request
    deliverable = request.version.deliverable
    if not contact.email:
        return
    compose(to_addr=contact.email, to_name=contact.name, template="on_behalf_receipt",
            idempotency_key=f"receipt:{decision.id}", deliverable_id=deliverable.id,
            reply_to=decision.on_behalf.recorded_by.email, decision=decision,
            on_behalf=decision.on_behalf, contact=contact, deliverable=deliverable,
            version=request.version)
