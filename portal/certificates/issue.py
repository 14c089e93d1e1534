"""Issuing the certificate of an approved request: once, by a job after the approval
commits (asked for again by the sweep if that job was lost)."""
from __future__ import annotations

import hashlib
import secrets
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import segno
from flask import current_app, render_template
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal import audit
from portal.audit import describe
from portal.certificates.language import margin_css
from portal.certificates.render import html_to_pdf
from portal.certificates.seal import ensure_seal_configured, seal_pdf
from portal.certificates.signing_key import SealNotConfigured, loaded_key
from portal.certificates.verify import names_at_issue
from portal.extensions import db
from portal.files.storage import file_store
from portal.i18n import in_language, request_language
from portal.models import (
    APPROVED_STATUSES,
    Approver,
    AuditEvent,
    Certificate,
    Comment,
    Condition,
    Decision,
    ReviewRequest,
    Version,
    utcnow,
)
from portal.notifications.queue import after_commit
from portal.reports.devices import numbered_user_agents
from portal.urls import external_url

ISSUE_JOB = "jobs.certificates.issue"
_ACTOR_WIDTH = 32  # characters of a name in the audit trail's lines
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread


def new_public_id() -> str:
    groups = ("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(3))
    return "SO-" + "-".join(groups)


def verify_url(public_id: str) -> str:
    return external_url("verify.by_link", public_id=public_id)


def _earlier_conditions(version: Version) -> list[tuple[Condition, int]]:
    """Conditions set on earlier versions of this deliverable, with the version each was
    set on, as they stand now (met, won't do, or still open)."""
    rows = db.session.execute(
        select(Condition, Version.number).join(Decision, Condition.decision_id == Decision.id)
        .join(Version, Decision.version_id == Version.id)
        .where(Version.deliverable_id == version.deliverable_id, Version.number < version.number)
        .order_by(Version.number, Decision.id, Condition.position)
        .options(selectinload(Condition.resolved_in_version),
                 selectinload(Condition.decision).selectinload(Decision.approver)
                 .selectinload(Approver.contact))).all()
    return [(condition, number) for condition, number in rows]


@dataclass(frozen=True)
class AuditLines:
    head: str
    lines: list[str]


def audit_lines(events: list[AuditEvent]) -> AuditLines:
    """The audit trail as aligned monospace lines (#, when, event, actor, hash)."""
    actors = [" ".join(e.actor_label.split(" <")[0].split()) for e in events]
    actors = [a if len(a) <= _ACTOR_WIDTH else a[:_ACTOR_WIDTH - 1] + "…" for a in actors]
    heads = ("#", _("When (UTC)"), _("Event"), _("Actor"), _("Hash"))
    seq, verb, actor = (max([len(head), *map(len, column)]) for head, column in (
        (heads[0], [str(e.seq) for e in events]), (heads[2], [e.verb for e in events]),
        (heads[3], actors)))
    when = max(19, len(heads[1]))
    line = f"{{:>{seq}}}  {{:<{when}}}  {{:<{verb}}}  {{:<{actor}}}  {{}}"
    return AuditLines(line.format(*heads), [
        line.format(e.seq, f"{e.at:%Y-%m-%d %H:%M:%S}", e.verb, name, e.hash[:16] + "…")
        for e, name in zip(events, actors, strict=True)])


def timeline_lines(events: list[AuditEvent]) -> AuditLines:
    """The request's timeline (when, what, who) as aligned monospace lines, like the trail's."""
    heads = (_("When (UTC)"), _("What"), _("Who"))
    whats = [describe(e.verb) for e in events]
    width = max([len(heads[1]), *map(len, whats)])
    when = max(19, len(heads[0]))
    line = f"{{:<{when}}}  {{:<{width}}}  {{}}"
    return AuditLines(line.format(*heads), [
        line.format(f"{e.at:%Y-%m-%d %H:%M:%S}", what, e.actor_label)
        for e, what in zip(events, whats, strict=True)])


def _context(request: ReviewRequest, public_id: str, issued_at: datetime,
             language: str | None = None) -> dict:
    """What the template reads; call it inside in_language(language) (the words of the
    timeline and the trail's headings are worked out here)."""
    version = request.version
    deliverable = version.deliverable
    client = deliverable.project.client
    events = audit.client_visible(db.session.scalars(
        select(AuditEvent).where(AuditEvent.deliverable_id == deliverable.id)
        .order_by(AuditEvent.seq)
    ).all())
    comments = db.session.scalar(
        select(db.func.count(Comment.id)).where(Comment.request_id == request.id,
                                                Comment.internal.is_(False)))
    pinned = db.session.scalars(
        select(Comment).where(Comment.request_id == request.id, Comment.internal.is_(False),
                              Comment.page.is_not(None)).order_by(Comment.id)).all()
    url = verify_url(public_id)
    return {
        "public_id": public_id, "issued_at": issued_at, "request": request,
        "lang": language or request_language(request),
        "version": version, "deliverable": deliverable, "client": client,
        "project": deliverable.project, "zone": client.zone,
        "review": version.internal_approval, "events": events, "comment_count": comments,
        "pinned_comments": pinned,
        "earlier_conditions": _earlier_conditions(version),
        "timeline": timeline_lines([e for e in events if e.at >= request.sent_at
                                    and not e.verb.startswith("comment.")]),
        "audit": audit_lines(events),
        "chain_head": audit.head_hash(), "verify_url": url,
        "qr_data_uri": segno.make(url, error="m").png_data_uri(scale=1, border=1),
        # Each browser string once, in the appendix; a decision row says "[UA 1]".
        "user_agents": numbered_user_agents(a.decision.user_agent for a in request.approvers
                                            if a.decision),
    }


def certificate_page(request: ReviewRequest, public_id: str, issued_at: datetime,
                     language: str) -> tuple[str, str]:
    """The certificate's HTML and its running footer's CSS, in `language`: what the PDF is
    laid out from (bench/certificates.py times the layout alone from these)."""
    with in_language(language):
        return (render_template("certificates/certificate.html",
                                **_context(request, public_id, issued_at, language)),
                margin_css())


def render_certificate(request: ReviewRequest, public_id: str, issued_at: datetime,
                       language: str) -> bytes:
    """The sealed PDF, every word of it in `language` (certificates/language.py)."""
    html, page_css = certificate_page(request, public_id, issued_at, language)
    pdf = html_to_pdf(html, Path(current_app.static_folder or "static"), page_css=page_css)
    with in_language(language):
        reason = _("Approval certificate %(id)s for %(file)s", id=public_id,
                   file=request.version.file_name)
    return seal_pdf(pdf, current_app.config, reason=reason)


def issue_certificate(request_id: int) -> Certificate | None:
    """Render, seal, store and record the certificate once; a retry returns the first."""
    request = db.session.get(ReviewRequest, request_id)
    if request is None or request.status not in APPROVED_STATUSES:
        return None
    ensure_seal_configured(current_app.config)
    existing = db.session.scalar(select(Certificate).where(Certificate.request_id == request_id))
    if existing is not None:
        return existing
    public_id, issued_at, language = new_public_id(), utcnow(), request_language(request)
    pdf = render_certificate(request, public_id, issued_at, language)
    certificate = Certificate(
        public_id=public_id, request_id=request.id, pdf_sha256=hashlib.sha256(pdf).hexdigest(),
        storage_key=file_store().put_bytes(pdf), size=len(pdf), issued_at=issued_at,
        audit_head_hash=audit.head_hash(),
    )
    try:
        with db.session.begin_nested():
            db.session.add(certificate)
    except IntegrityError:  # another worker issued it first
        return db.session.scalar(select(Certificate).where(Certificate.request_id == request_id))
    audit.record(None, "certificate.issued", certificate,
                 deliverable=request.version.deliverable, public_id=public_id,
                 pdf_sha256=certificate.pdf_sha256, names=names_at_issue(request),
                 language=language)  # read back by language.issued_language
    return certificate


def warm_up() -> None:
    """For a worker that forks a process per job (jobs/worker.py): load the key, fonts and
    stylesheet once in the parent, so each job's process inherits them rather than paying
    for them (an RSA key's validation alone is a few hundred ms)."""
    with suppress(SealNotConfigured):
        loaded_key(current_app.config)
    html_to_pdf("<p>Signoff</p>", Path(current_app.static_folder or "static"))


def issue_after_commit(request_id: int) -> None:
    after_commit(ISSUE_JOB, request_id, job_id=f"certificate-{request_id}")


def requests_missing_certificates(limit: int = 100) -> list[int]:
    """Approved requests without a certificate (their job was lost, or no key was set)."""
    return list(db.session.scalars(
        select(ReviewRequest.id).where(ReviewRequest.status.in_(APPROVED_STATUSES),
                                       ~ReviewRequest.certificate.has())
        .order_by(ReviewRequest.id).limit(limit)))


def ask_again_for_missing(limit: int = 100) -> int:
    """Queue the missing certificates' jobs again, after the caller commits; how many."""
    missing = requests_missing_certificates(limit)
    for request_id in missing:
        issue_after_commit(request_id)
    return len(missing)
