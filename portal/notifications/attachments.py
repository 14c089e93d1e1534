"""What an outbox email carries besides its text, found at send time from the row itself.

An outbox row holds text only. A file that goes with it is named by the row (today: the
approval certificate, by the id in its idempotency key) and read from the file store when
the email is built, so no PDF sits in the database twice and the bytes sent are the ones
stored under the certificate's recorded SHA-256, or nothing is sent.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select

from portal.extensions import db
from portal.files.storage import file_store
from portal.models import Certificate, OutboxMessage

CERTIFICATE_PREFIX = "certificate:"


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "pdf"


def certificate_filename(public_id: str) -> str:
    """The same name the download buttons give it (views/common.py)."""
    return f"approval-certificate-{public_id}.pdf"


def certificate_key(public_id: str, approver_id: int) -> str:
    """The idempotency key of one approver's certificate email; it also names the file."""
    return f"{CERTIFICATE_PREFIX}{public_id}:approver:{approver_id}"


def _certificate_id(message: OutboxMessage) -> str | None:
    key = message.idempotency_key or ""
    if not key.startswith(CERTIFICATE_PREFIX):
        return None
    return key[len(CERTIFICATE_PREFIX):].partition(":")[0]


def for_message(message: OutboxMessage) -> list[Attachment]:
    """The files this row's email carries. Raises ValueError when a named file is gone or
    is not the one issued: sending the email without it, or with other bytes, would be
    wrong, and retrying cannot help (the row fails and staff see it)."""
    public_id = _certificate_id(message)
    if public_id is None:
        return []
    certificate = db.session.scalar(
        select(Certificate).where(Certificate.public_id == public_id))
    if certificate is None:
        raise ValueError(f"certificate {public_id} does not exist")
    try:
        pdf = file_store().read_bytes(certificate.storage_key)
    except OSError as exc:
        raise ValueError(f"certificate {public_id} cannot be read: {exc}") from exc
    if hashlib.sha256(pdf).hexdigest() != certificate.pdf_sha256:
        raise ValueError(f"certificate {public_id} differs from the one issued")
    return [Attachment(certificate_filename(public_id), pdf)]
