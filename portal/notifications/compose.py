"""Compose emails into the outbox, in the caller's transaction; they go out after commit."""
from __future__ import annotations

from flask import render_template
from sqlalchemy import select

from portal.extensions import db
from portal.models import Certificate, OutboxMessage
from portal.notifications.outbox import send_after_commit


def compose(
    *,
    to_addr: str,
    to_name: str,
    template: str,
    idempotency_key: str,
    deliverable_id: int | None = None,
    reply_to: str = "",
    attachment: Certificate | None = None,
    **context: object,
) -> OutboxMessage:
    """Render `emails/<template>.{subject,txt,html}` into a pending outbox row.

    The idempotency key makes a retried action write the same message only once. An
    `attachment` (a certificate) is attached from the file store when the email is sent.
    """
    existing = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key))
    if existing is not None:
        return existing
    context = {"to_name": to_name, **context}
    message = OutboxMessage(
        idempotency_key=idempotency_key,
        to_addr=to_addr,
        to_name=to_name,
        reply_to=reply_to,
        subject=render_template(f"emails/{template}.subject.txt", **context).strip(),
        body_text=render_template(f"emails/{template}.txt", **context),
        body_html=render_template(f"emails/{template}.html", **context),
        deliverable_id=deliverable_id,
        attachment_certificate_id=attachment.id if attachment is not None else None,
    )
    db.session.add(message)
    db.session.flush()
    send_after_commit(message.id)
    return message
