"""What an outbox email carries besides its text, found at send time from the row itself.

An outbox row holds text only. A file that goes with it is named by the row (today: an
approval certificate, `attachment_certificate_id`) and read from the file store when the
email is built, so no PDF sits in the database twice and the bytes sent are the ones
stored under the certificate's recorded SHA-256, or nothing is sent.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

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
    """The idempotency key of one approver's certificate email."""
    return f"{CERTIFICATE_PREFIX}{public_id}:approver:{approver_id}"


def for_message(message: OutboxMessage) -> list[Attachment]:
    """The files this row's email carries. Raises ValueError when a named file is gone or
    is not the one issued: sending the email without it, or with other bytes, would be
    wrong, and retrying cannot help (the row fails and staff see it)."""
    if message.attachment_certificate_id is None:
        return []
    certificate = db.session.get(Certificate, message.attachment_certificate_id)
    if certificate is None:
        raise ValueError(f"certificate #{message.attachment_certificate_id} does not exist")
    public_id = certificate.public_id
    try:
        pdf = file_store().read_bytes(certificate.storage_key)
    except OSError as exc:
        raise ValueError(f"certificate {public_id} cannot be read: {exc}") from exc
    if hashlib.sha256(pdf).hexdigest() != certificate.pdf_sha256:
        raise ValueError(f"certificate {public_id} differs from the one issued")
    return [Attachment(certificate_filename(public_id), pdf)]
