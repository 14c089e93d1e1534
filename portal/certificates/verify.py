"""Telling our genuine certificates from altered files and strangers."""
from __future__ import annotations

import enum
import hashlib
import io
import re
from dataclasses import dataclass

from flask import current_app
from pypdf import PdfReader
from sqlalchemy import select

from portal.certificates.seal import check_seal
from portal.extensions import db
from portal.models import Certificate

ID_PATTERN = re.compile(r"SO-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}")


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
