"""Telling our genuine certificates from altered files and strangers, in bounded work.

Only an uploaded file is ever called genuine. An id on its own (typed, or the QR code's
link) answers what the certificate records, read from the database: /verify is public, so
that record holds names, outcomes, the version and dates, and never email or IP
addresses, browsers, or what anyone wrote.

An uploaded PDF is judged by its SHA-256 and by the id its document information claims
(claim.py, which never interprets a page: text extraction over an untrusted PDF can be
made to take minutes). The seal is checked (pyHanko) only on bytes identical to a file we
issued, so that work is bounded by what we render ourselves.

No database transaction is open while a PDF is parsed: the claim is read before the one
lookup, and the lookup's read ends before the seal check. A transaction holds a pooled
connection, and on SQLite every one takes the write lock (BEGIN IMMEDIATE), so one held
during parsing would stall every writer.
"""
from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from portal.certificates.claim import ID_PATTERN, claimed_id
from portal.certificates.seal import check_seal
from portal.extensions import db
from portal.models import AuditEvent, Certificate, ReviewRequest
from portal.people import agency


class Verdict(enum.Enum):
    GENUINE = "genuine"  # an uploaded file, byte for byte one we issued
    ON_RECORD = "on_record"  # an id we issued; no file was checked
    ALTERED = "altered"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DecisionRecord:
    name: str
    outcome: str  # "approved", "approved with conditions", …
    at: datetime
    conditions: int  # how many, never their text
    changes_requested: bool = False  # the decision asked for changes (not an approval)


@dataclass(frozen=True)
class CertificateRecord:
    """What anyone holding a certificate's id may read about it."""

    public_id: str
    agency: str  # who issued it: the agency running this portal
    issued_at: datetime
    pdf_sha256: str
    outcome: str
    client: str
    project: str
    deliverable: str
    version: int
    file_name: str
    file_sha256: str
    decisions: list[DecisionRecord]


@dataclass(frozen=True)
class Verification:
    verdict: Verdict
    certificate: Certificate | None = None
    detail: str = ""
    record: CertificateRecord | None = None


def names_at_issue(request: ReviewRequest) -> dict[str, Any]:
    """The names a certificate prints, kept in its audit event: a deliverable, client or
    contact renamed later does not change what /verify says the certificate records."""
    deliverable = request.version.deliverable
    return {"agency": agency.current().name, "client": deliverable.project.client.name,
            "project": deliverable.project.name, "deliverable": deliverable.title,
            "approvers": {str(a.id): a.contact.name for a in request.approvers}}


def _names_issued(certificate: Certificate) -> dict[str, Any]:
    detail = db.session.scalar(select(AuditEvent.detail).where(
        AuditEvent.verb == "certificate.issued", AuditEvent.subject_type == "certificates",
        AuditEvent.subject_id == certificate.id))
    return json.loads(detail).get("names", {}) if detail else {}


def record_of(certificate: Certificate) -> CertificateRecord:
    request = certificate.request
    version = request.version
    # Certificates issued before the names were kept read today's.
    names = {**names_at_issue(request), **_names_issued(certificate)}
    approvers = {**names_at_issue(request)["approvers"], **names.get("approvers", {})}
    decisions = [DecisionRecord(approvers[str(a.id)], a.decision.outcome.label,
                                a.decision.at, len(a.decision.conditions),
                                a.decision.outcome.value == "rejected")
                 for a in request.approvers if a.decision is not None]
    return CertificateRecord(
        public_id=certificate.public_id, agency=names["agency"],
        issued_at=certificate.issued_at, pdf_sha256=certificate.pdf_sha256,
        outcome=request.status.label, client=names["client"], project=names["project"],
        deliverable=names["deliverable"], version=version.number,
        file_name=version.file_name, file_sha256=version.sha256,
        decisions=sorted(decisions, key=lambda d: d.at))


def by_public_id(public_id: str) -> Certificate | None:
    cleaned = public_id.strip().upper()
    if not ID_PATTERN.fullmatch(cleaned):
        return None
    return db.session.scalar(select(Certificate).where(Certificate.public_id == cleaned))


def stored_file_of(public_id: str) -> tuple[str, str] | None:
    """(public id, storage key) of an issued certificate, for a download: two columns, no
    Certificate object built (the download's lookup was most of its time)."""
    cleaned = public_id.strip().upper()
    if not ID_PATTERN.fullmatch(cleaned):
        return None
    row = db.session.execute(select(Certificate.public_id, Certificate.storage_key)
                             .where(Certificate.public_id == cleaned)).first()
    return None if row is None else (row[0], row[1])


def verify_pdf(pdf: bytes) -> Verification:
    """An uploaded file: genuine only if its bytes are the ones we issued and our seal holds."""
    _end_read()
    digest = hashlib.sha256(pdf).hexdigest()
    claimed = claimed_id(pdf)
    certificate = _issued_as(digest, claimed)
    if certificate is None:
        return Verification(Verdict.UNKNOWN, None, _("no certificate of ours matches this file"))
    if certificate.pdf_sha256 != digest:
        return Verification(Verdict.ALTERED, certificate,
                            _("the file differs from the one issued under this id"),
                            record_of(certificate))
    return _genuine(certificate, pdf)


def verify_id(public_id: str) -> Verification:
    """A typed or linked id: whether we issued it, and what it records. No file is read:
    nothing here can say a copy someone holds is genuine; an upload can."""
    certificate = by_public_id(public_id)
    if certificate is None:
        return Verification(Verdict.UNKNOWN, None, _("no certificate has this id"))
    return Verification(Verdict.ON_RECORD, certificate, _("no file was checked"),
                        record_of(certificate))


def _issued_as(digest: str, claimed: str | None) -> Certificate | None:
    """The certificate with these exact bytes, else the one the file claims to be."""
    match = Certificate.pdf_sha256 == digest
    if claimed is not None:
        match = or_(match, Certificate.public_id == claimed)
    found = list(db.session.scalars(select(Certificate).where(match).limit(2)))
    return next((c for c in found if c.pdf_sha256 == digest), found[0] if found else None)


def _genuine(certificate: Certificate, pdf: bytes) -> Verification:
    # These are exactly the bytes we issued. The seal is for third parties; a key rotated
    # since (or none configured here) changes what we can say about it, not whether the
    # file is genuine.
    record = record_of(certificate)  # read before the parse, as the docstring says
    _end_read()
    seal = check_seal(pdf, current_app.config)
    return Verification(Verdict.GENUINE, certificate,
                        _("sealed by our key, whole file covered") if seal.valid else
                        _("identical to the file we issued (seal: %(problem)s)",
                          problem=str(SEAL_PROBLEMS.get(seal.detail, seal.detail))), record)


# What the seal check (seal.py) says, in the reader's language; a detail naming an
# exception's type is shown as it is.
SEAL_PROBLEMS = {
    "the seal does not match the content": _l("the seal does not match the content"),
    "sealed by a key that is not ours": _l("sealed by a key that is not ours"),
    "content was added after sealing": _l("content was added after sealing"),
}


def _end_read() -> None:
    """Release the connection before parsing. Verification only reads, so this ends a read;
    a caller with unsaved changes would lose them, so that is refused outright."""
    session = db.session()
    if not session.in_transaction():
        return
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("verification ends the open transaction: commit your changes first")
    session.rollback()
