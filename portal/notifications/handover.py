"""Who hears of a hand-over (workflow/delegation.py): the deliverable's owner when one
waits for them to confirm (or went through directly), and the approver who handed over,
when the colleague decides now or the team kept them. The colleague's own invitation is a
link email, sent by the workflow (links.send_review_link)."""
from __future__ import annotations

import json
from typing import Any

from portal.audit import on
from portal.models import AuditEvent, Delegation
from portal.notifications import webhooks
from portal.notifications.compose import compose
from portal.notifications.reactions import request_data
from portal.urls import external_url


def _context(delegation: Delegation) -> dict[str, Any]:
    request = delegation.request
    deliverable = request.version.deliverable
    return {"delegation": delegation, "deliverable": deliverable, "version": request.version,
            "delegator": delegation.from_approver.contact}


def _tell_owner(delegation: Delegation, key: str, direct: bool) -> None:
    context = _context(delegation)
    deliverable = context["deliverable"]
    owner = deliverable.owner
    compose(to_addr=owner.email, to_name=owner.name, template="delegation_requested",
            idempotency_key=key, deliverable_id=deliverable.id, direct=direct,
            url=external_url("staff.deliverable_page", deliverable_id=deliverable.id)
            + "#handovers", **context)


def _tell_delegator(delegation: Delegation, template: str, key: str) -> None:
    context = _context(delegation)
    contact, deliverable = context["delegator"], context["deliverable"]
    if not contact.email:
        return
    compose(to_addr=contact.email, to_name=contact.name, template=template,
            idempotency_key=key, deliverable_id=deliverable.id,
            reply_to=deliverable.owner.email, **context)


@on("delegation.requested")
def _requested(_actor: Any, delegation: Delegation, event: AuditEvent) -> None:
    if not json.loads(event.detail).get("direct"):  # else the confirmation tells them
        _tell_owner(delegation, f"delegation-requested:{delegation.id}", direct=False)


@on("delegation.confirmed")
def _confirmed(_actor: Any, delegation: Delegation, event: AuditEvent) -> None:
    _tell_delegator(delegation, "delegation_handed_over", f"delegation-done:{delegation.id}")
    direct = bool(json.loads(event.detail).get("direct"))
    if direct:
        _tell_owner(delegation, f"delegation-direct:{delegation.id}", direct=True)
    original, colleague = delegation.from_approver, delegation.to_approver
    webhooks.emit("request.delegated", {
        "delegation": {
            "id": delegation.id, "note": delegation.note, "direct": direct,
            "from": {"name": original.contact.name, "email": original.contact.email},
            "to": {"name": colleague.contact.name, "email": colleague.contact.email},
            "confirmed_by": ({"name": delegation.decided_by.name,
                              "email": delegation.decided_by.email}
                             if delegation.decided_by else None),
            "at": delegation.decided_at.isoformat() if delegation.decided_at else None},
        **request_data(delegation.request)})


@on("delegation.declined")
def _declined(_actor: Any, delegation: Delegation, _event: AuditEvent) -> None:
    _tell_delegator(delegation, "delegation_declined", f"delegation-declined:{delegation.id}")
