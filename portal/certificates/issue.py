"""Issuing certificates for approved requests, and telling genuine ones from the rest."""
from __future__ import annotations

import enum
import hashlib
import io
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import segno
from flask import current_app, render_template
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal import audit, webhooks
from portal.certificates.render import html_to_pdf
from portal.certificates.seal import check_seal, ensure_seal_configured, seal_pdf
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Certificate,
    Comment,
    RequestStatus,
    ReviewRequest,
    utcnow,
)
from portal.storage import file_store

APPROVED = (RequestStatus.APPROVED, RequestStatus.APPROVED_WITH_CONDITIONS)
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
ID_PATTERN = re.compile(r"SO-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}")


def new_public_id() -> str:
    groups = ("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(3))
    return "SO-" + "-".join(groups)


def verify_url(public_id: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/verify/{public_id}"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _context(request: ReviewRequest, public_id: str, issued_at: datetime) -> dict:
    version = request.version
    deliverable = version.deliverable
    client = deliverable.project.client
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.deliverable_id == deliverable.id)
        .order_by(AuditEvent.seq)
    ).all()
    comments = db.session.scalar(
        select(db.func.count(Comment.id)).where(Comment.request_id == request.id,
                                                Comment.internal.is_(False)))
    url = verify_url(public_id)
    return {
        "public_id": public_id, "issued_at": issued_at, "request": request,
        "version": version, "deliverable": deliverable, "client": client,
        "project": deliverable.project, "zone": _zone(client.timezone),
        "review": version.internal_approval, "events": events, "comment_count": comments,
        "request_events": [e for e in events if e.at >= request.sent_at],
        "chain_head": audit.head_hash(), "verify_url": url,
        "qr_data_uri": segno.make(url, error="m").svg_data_uri(scale=4, border=1),
    }


def render_certificate(request: ReviewRequest, public_id: str, issued_at: datetime) -> bytes:
    html = render_template("certificates/certificate.html",
                           **_context(request, public_id, issued_at))
    pdf = html_to_pdf(html, Path(current_app.static_folder or "static"))
    return seal_pdf(pdf, current_app.config,
                    reason=f"Approval certificate {public_id} for {request.version.file_name}")


def issue_certificate(request_id: int) -> Certificate | None:
    """Render, seal, store and record the certificate once; a retry returns the first."""
    request = db.session.get(ReviewRequest, request_id)
    if request is None or request.status not in APPROVED:
        return None
    ensure_seal_configured(current_app.config)
    existing = db.session.scalar(select(Certificate).where(Certificate.request_id == request_id))
    if existing is not None:
        return existing
    public_id, issued_at = new_public_id(), utcnow()
    pdf = render_certificate(request, public_id, issued_at)
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
                 pdf_sha256=certificate.pdf_sha256)
    webhooks.emit("certificate.issued", {
        "certificate": {"id": public_id, "pdf_sha256": certificate.pdf_sha256,
                        "issued_at": issued_at.isoformat(), "verify_url": verify_url(public_id)},
        **webhooks.request_data(request)})
    return certificate


def requests_missing_certificates(limit: int = 100) -> list[int]:
    return list(db.session.scalars(
        select(ReviewRequest.id).where(ReviewRequest.status.in_(APPROVED),
                                       ~ReviewRequest.certificate.has())
        .order_by(ReviewRequest.id).limit(limit)))


class Verdict(enum.Enum):
    GENUINE = "genuine"
    ALTERED = "altered"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verification:
    verdict: Verdict
    certificate: Certificate | None = None
    detail: str = ""


def by_public_id(public_id: str) -> Certificate | None:
    cleaned = public_id.strip().upper()
    if not ID_PATTERN.fullmatch(cleaned):
        return None
    return db.session.scalar(select(Certificate).where(Certificate.public_id == cleaned))


def _id_inside(pdf: bytes) -> str | None:
    try:
        reader = PdfReader(io.BytesIO(pdf), strict=False)
        found = ID_PATTERN.search(str((reader.metadata or {}).get("/Title", "")))
        if found is None and reader.pages:
            found = ID_PATTERN.search(reader.pages[0].extract_text() or "")
    except Exception:  # any unreadable upload is simply not ours
        return None
    return found.group(0) if found else None


def verify_pdf(pdf: bytes) -> Verification:
    """Genuine only if the bytes are the ones we issued and our seal holds."""
    certificate = db.session.scalar(
        select(Certificate).where(Certificate.pdf_sha256 == hashlib.sha256(pdf).hexdigest()))
    if certificate is not None:
        # These are exactly the bytes we issued. The seal is for third parties; a key
        # rotated since (or none configured here) changes what we can say about it, not
        # whether the file is genuine.
        seal = check_seal(pdf, current_app.config)
        return Verification(Verdict.GENUINE, certificate,
                            seal.detail if seal.valid else f"identical to the file we issued "
                            f"(seal: {seal.detail})")
    claimed = _id_inside(pdf)
    certificate = by_public_id(claimed) if claimed else None
    if certificate is not None:
        return Verification(Verdict.ALTERED, certificate,
                            "the file differs from the one issued under this id")
    return Verification(Verdict.UNKNOWN, None, "no certificate of ours matches this file")
