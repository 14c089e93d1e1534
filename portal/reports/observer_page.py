"""An observer's page: the client's review page (document, versions, thread, how the
request stands and whose turn it is) without anything that decides.

It reuses the review page's read model (portal/reports/review_page.py); only what names
the person looking differs: nobody on the approver list is "you", the status line says
whose move it is, and the client's earlier points (which approvers reopen) are not listed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from flask_babel import gettext as _
from sqlalchemy.orm import joinedload

from portal.extensions import db
from portal.models import (
    Approver,
    Contact,
    Deliverable,
    Observer,
    Project,
    RequestStatus,
    ReviewRequest,
    Version,
)
from portal.reports import renders
from portal.reports.pins import pins
from portal.reports.review_page import _decisions, _earlier_conditions, _history, standing
from portal.workflow.comments import client_thread
from portal.workflow.policies import waiting_for
from portal.workflow.turns import closed_by, everyone_approved


@dataclass(frozen=True)
class _Nobody:
    """The viewer `standing` compares each approver with: an observer is none of them."""
    id: int | None = None


def observer_by_public_id(public_id: Any) -> Observer | None:
    """The observer a URL names, with their request as the page shows it (one statement)."""
    if not isinstance(public_id, str):
        return None
    request = joinedload(Observer.request)
    version = request.joinedload(ReviewRequest.version).joinedload(Version.deliverable)
    return db.session.scalars(
        db.select(Observer).where(Observer.public_id == public_id).options(
            joinedload(Observer.contact).joinedload(Contact.client),
            version.joinedload(Deliverable.project).joinedload(Project.client),
            version.joinedload(Deliverable.owner),
            request.joinedload(ReviewRequest.certificate),
            _decisions(request.joinedload(ReviewRequest.approvers)))).unique().one_or_none()


def status_line(request: ReviewRequest) -> str:
    """How the request stands, for someone who follows it and does not decide."""
    if request.status == RequestStatus.OPEN:
        waiting = waiting_for(request)
        return _("Waiting for %(who)s to decide", who=waiting) if waiting else \
            _("Waiting for the approvers to decide")
    if request.status in (RequestStatus.APPROVED, RequestStatus.APPROVED_WITH_CONDITIONS,
                          RequestStatus.CHANGES_REQUESTED) and not (
            request.status != RequestStatus.CHANGES_REQUESTED and everyone_approved(request)):
        return closed_by(request)
    return {
        RequestStatus.APPROVED: _("Approved by everyone"),
        RequestStatus.APPROVED_WITH_CONDITIONS: _("Approved by everyone, with conditions"),
        RequestStatus.EXPIRED: _("This request expired without a decision"),
        RequestStatus.CANCELLED: _("This request was withdrawn by the team"),
    }.get(request.status, "")


def shared_version(observer: Observer, version_id: int) -> Version | None:
    """A version of the observer's deliverable that was sent to the client."""
    version = db.session.get(Version, version_id)
    request = observer.request
    if version is None or version.deliverable_id != request.version.deliverable_id:
        return None
    return version if version.id == request.version_id or version.requests else None


def thread(observer: Observer) -> dict[str, Any]:
    request = observer.request
    comments = client_thread(request.id)
    return {"observer": observer, "review_request": request, "comments": comments,
            "viewer": renders.viewer(request.version_id, observer.public_id, observer=True),
            "pins": pins(comments, request.version_id),
            "zone": observer.contact.client.zone}


def page(observer: Observer) -> dict[str, Any]:
    """Everything the page shows."""
    request = observer.request
    version = request.version
    deliverable = version.deliverable
    history = _history(version)
    nobody = cast(Approver, _Nobody())
    return {
        # The review page's template reads `approver` in what this page does not replace.
        "approver": nobody, "version": version, "deliverable": deliverable,
        "project": deliverable.project, "client": deliverable.project.client,
        "history": history, "earlier_conditions": _earlier_conditions(history),
        "earlier_points": [], "status_line": status_line(request),
        "standing": {a.id: standing(a, nobody) for a in request.approvers},
        "replaced": None, **thread(observer),
    }
