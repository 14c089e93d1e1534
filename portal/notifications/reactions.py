"""What follows each domain event: the owner's emails and the webhooks.

Domain functions only record the event (audit.record); this table says who hears of it.
Everything runs in the recording transaction, so it is sent after commit or not at all.
Link emails are not here: sending a link is a state change (its expiry) in the workflow.
"""
from __future__ import annotations

import json
from typing import Any

from portal.audit import on
from portal.certificates import verify_url
from portal.i18n import InReadersLanguage
from portal.models import (
    Approver,
    ApproverStatus,
    AuditEvent,
    Certificate,
    Contact,
    Decision,
    Deliverable,
    Outcome,
    RequestStatus,
    ReviewRequest,
    User,
)
from portal.notifications import webhooks
from portal.notifications.attachments import certificate_key
from portal.notifications.compose import compose
from portal.notifications.on_behalf import on_behalf_receipt
from portal.urls import external_url
from portal.workflow.policies import describe, recorded_words, rule_of
from portal.workflow.turns import closed_by

DECISIONS = ("decision.approved", "decision.approved_with_conditions", "decision.rejected")


def request_data(request: ReviewRequest) -> dict[str, Any]:
    """What every request event says about its request (ids, names, the exact file)."""
    version = request.version
    deliverable = version.deliverable
    words = recorded_words(request)  # a payload's words never follow who triggered it
    return {
        "request_id": request.id, "status": request.status.value,
        "deliverable": {"id": deliverable.id, "title": deliverable.title},
        "project": {"id": deliverable.project.id, "name": deliverable.project.name},
        "client": {"id": deliverable.project.client.id, "name": deliverable.project.client.name},
        "version": {"number": version.number, "file_name": version.file_name,
                    "sha256": version.sha256},
        "due_date": request.due_date.isoformat(),
        # What "approved" needed: receivers of a close under "any one of" or "K of N" see
        # why undecided approvers are withdrawn.
        "policy": {"kind": request.policy.value, "words": words,
                   "required_approvals": rule_of(request).needed,
                   "changes_end_request": request.changes_end_request},
        "approvers": [{"name": a.contact.name, "email": a.contact.email,
                       "status": a.status.value} for a in request.approvers],
    }


def _tell_owner(deliverable: Deliverable, template: str, key: str, **context: Any) -> None:
    """The deliverable's owner is who acts and is chased, so every notice goes to them."""
    owner = deliverable.owner
    compose(to_addr=owner.email, to_name=owner.name, template=template, idempotency_key=key,
            deliverable_id=deliverable.id, deliverable=deliverable,
            url=external_url("staff.deliverable_page", deliverable_id=deliverable.id),
            **context)


@on(*DECISIONS)
def _decision(_actor: Contact, decision: Decision, _event: AuditEvent) -> None:
    approver = decision.approver
    request = approver.request
    _tell_owner(request.version.deliverable, "decision_recorded", f"decision:{decision.id}",
                decision=decision, approver=approver)
    if decision.on_behalf is not None:  # the contact's receipt names who recorded it
        on_behalf_receipt(decision)
    else:
        _receipt(decision)
    webhooks.emit("decision.recorded", {
        "decision": {"id": decision.id, "outcome": decision.outcome.value, "text": decision.text,
                     "conditions": [c.text for c in decision.conditions],
                     # Staff classify requested changes later: null here since 0017.
                     "scope": decision.classification.value if decision.classification
                     else None,
                     "at": decision.at.isoformat() if decision.at else None,
                     # Given by phone, in a meeting …: who recorded it, how and when.
                     "on_behalf": decision.on_behalf.facts if decision.on_behalf else None,
                     "approver": {"name": approver.contact.name,
                                  "email": approver.contact.email}},
        **request_data(request)})


@on("decision.classified", "decision.reclassified")
def _classified(staff: User, decision: Decision, _event: AuditEvent) -> None:
    """Staff classified requested changes (or corrected it): billing tools hear of it."""
    approver = decision.approver
    webhooks.emit("decision.classified", {
        "decision": {"id": decision.id, "outcome": decision.outcome.value, "text": decision.text,
                     "scope": decision.scope.value if decision.scope else None,
                     "note": decision.classification_note,
                     "classified_at": decision.classified_at.isoformat()
                     if decision.classified_at else None,
                     "classified_by": {"name": staff.name, "email": staff.email},
                     "approver": {"name": approver.contact.name,
                                  "email": approver.contact.email}},
        **request_data(approver.request)})


def _receipt(decision: Decision) -> None:
    """The decider's own receipt: a decision made through a forwarded link is seen by the
    person the link was sent to."""
    approver = decision.approver
    contact, request = approver.contact, approver.request
    deliverable = request.version.deliverable
    # Its time in the client's zone comes from compose() (portal/local_time.py).
    compose(to_addr=contact.email or "", to_name=contact.name, template="decision_receipt",
            idempotency_key=f"receipt:{decision.id}", deliverable_id=deliverable.id,
            reply_to=deliverable.owner.email, decision=decision, deliverable=deliverable,
            version=request.version)


@on("request.delivered", "request.approved", "request.approved_with_conditions",
    "request.changes_requested")
def _request_webhook(_actor: Any, request: ReviewRequest, event: AuditEvent) -> None:
    kind = "request.approved" if event.verb.startswith("request.approved") else event.verb
    webhooks.emit(kind, request_data(request))


@on("request.approved", "request.approved_with_conditions", "request.changes_requested")
def _not_needed(_actor: Any, request: ReviewRequest, _event: AuditEvent) -> None:
    """Those who were asked and had not decided when the request closed (the first approval
    under "any one of", the K-th under "K of N", a request for changes) hear that their
    decision is no longer needed, and why."""
    version = request.version
    deliverable = version.deliverable
    for approver in request.approvers:
        if (approver.status != ApproverStatus.WITHDRAWN or approver.invited_at is None
                or not approver.contact.email):
            continue
        compose(to_addr=approver.contact.email, to_name=approver.contact.name,
                template="decision_not_needed", idempotency_key=f"not-needed:{approver.id}",
                deliverable_id=deliverable.id, reply_to=deliverable.owner.email,
                deliverable=deliverable, version=version,
                # Worked out in the reader's language when the email is rendered.
                closed_by=InReadersLanguage(closed_by, request),
                policy=InReadersLanguage(describe, request))


@on("request.viewed")
def _viewed(viewer: Contact, request: ReviewRequest, _event: AuditEvent) -> None:
    webhooks.emit("request.viewed", {"viewer": {"name": viewer.name, "email": viewer.email},
                                     **request_data(request)})


@on("request.expired")
def _expired(_actor: Any, request: ReviewRequest, _event: AuditEvent) -> None:
    _tell_owner(request.version.deliverable, "request_expired", f"expired:{request.id}",
                request=request)
    webhooks.emit("request.expired", request_data(request))


@on("request.escalated")
def _escalated(_actor: Any, request: ReviewRequest, event: AuditEvent) -> None:
    _tell_owner(request.version.deliverable, "escalation", f"escalation:{request.id}",
                request=request, days=json.loads(event.detail)["days_silent"])


@on("link.renewal_requested")
def _renewal(_actor: Contact, approver: Approver, event: AuditEvent) -> None:
    _tell_owner(approver.request.version.deliverable, "link_renewed",
                f"link-renewed:{approver.id}:{event.seq}", approver=approver)


@on("deliverable.submitted")
def _review_asked(asked_by: User, deliverable: Deliverable, _event: AuditEvent) -> None:
    reviewer, version = deliverable.reviewer, deliverable.current_version
    if reviewer is None or version is None:
        return
    compose(to_addr=reviewer.email, to_name=reviewer.name, template="internal_review_request",
            idempotency_key=f"internal-review:{version.id}:{reviewer.id}",
            deliverable_id=deliverable.id, reply_to=asked_by.email, deliverable=deliverable,
            version=version, asked_by=asked_by,
            url=external_url("staff.deliverable_page", deliverable_id=deliverable.id))


@on("certificate.issued")
def _certificate(_actor: Any, certificate: Certificate, _event: AuditEvent) -> None:
    _send_certificate(certificate)
    webhooks.emit("certificate.issued", {
        "certificate": {"id": certificate.public_id, "pdf_sha256": certificate.pdf_sha256,
                        "issued_at": certificate.issued_at.isoformat(),
                        "verify_url": verify_url(certificate.public_id)},
        **request_data(certificate.request)})


def _send_certificate(certificate: Certificate) -> None:
    """Every approver who decided gets the finished certificate, attached at send time
    (notifications/attachments.py); one email each, however often the job runs."""
    request = certificate.request
    version = request.version
    deliverable = version.deliverable
    deciders = [a for a in request.approvers if a.decision is not None and a.contact.email]
    conditions = [{"name": a.contact.name,
                   "text": "; ".join(c.text for c in a.decision.conditions)} for a in deciders
                  if a.decision.outcome == Outcome.APPROVED_WITH_CONDITIONS
                  and a.decision.conditions]
    for approver in deciders:
        compose(to_addr=approver.contact.email or "", to_name=approver.contact.name,
                template="certificate_issued",
                idempotency_key=certificate_key(certificate.public_id, approver.id),
                deliverable_id=deliverable.id, reply_to=deliverable.owner.email,
                attachment=certificate, certificate=certificate, deliverable=deliverable,
                version=version,
                with_conditions=request.status == RequestStatus.APPROVED_WITH_CONDITIONS,
                conditions=conditions,
                verify_url=verify_url(certificate.public_id))
