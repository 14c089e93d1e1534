"""Telling our genuine certificates from altered files and strangers, in bounded work.

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
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import or_, select

from portal.certificates.claim import ID_PATTERN, claimed_id
from portal.certificates.seal import check_seal
from portal.extensions import db
from portal.files.storage import file_store
from portal.models import Certificate


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


def verify_pdf(pdf: bytes) -> Verification:
    """An uploaded file: genuine only if its bytes are the ones we issued and our seal holds."""
    _end_read()
    digest = hashlib.sha256(pdf).hexdigest()
    claimed = claimed_id(pdf)
    certificate = _issued_as(digest, claimed)
    if certificate is None:
        return Verification(Verdict.UNKNOWN, None, "no certificate of ours matches this file")
    if certificate.pdf_sha256 != digest:
        return Verification(Verdict.ALTERED, certificate,
                            "the file differs from the one issued under this id")
    return _genuine(certificate, pdf)


def verify_id(public_id: str) -> Verification:
    """A typed or linked id: the stored file must still be the one issued, under our seal."""
    certificate = by_public_id(public_id)
    if certificate is None:
        return Verification(Verdict.UNKNOWN, None, "no certificate has this id")
    pdf = file_store().read_bytes(certificate.storage_key)
    if hashlib.sha256(pdf).hexdigest() != certificate.pdf_sha256:
        return Verification(Verdict.ALTERED, certificate,
                            "the file differs from the one issued under this id")
    return _genuine(certificate, pdf)


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
    _end_read()
    seal = check_seal(pdf, current_app.config)
    return Verification(Verdict.GENUINE, certificate,
                        seal.detail if seal.valid else
                        f"identical to the file we issued (seal: {seal.detail})")


def _end_read() -> None:
    """Release the connection before parsing. Verification only reads, so this ends a read;
    a caller with unsaved changes would lose them, so that is refused outright."""
    session = db.session()
    if not session.in_transaction():
        return
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("verification ends the open transaction: commit your changes first")
    session.rollback()
