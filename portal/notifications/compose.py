"""Compose emails into the outbox, in the caller's transaction; they go out after commit."""
from __future__ import annotations

from datetime import tzinfo

from flask import render_template
from sqlalchemy import select

from portal.extensions import db
from portal.models import Certificate, Client, Contact, Deliverable, OutboxMessage, Project
from portal.models.people import zone_named
from portal.notifications.outbox import send_after_commit
from portal.people.agency import current as current_agency


def recipient_zone(to_addr: str, deliverable_id: int | None) -> tzinfo:
    """A contact of the deliverable's client reads times in the client's zone; anyone
    else (staff) in UTC."""
    if deliverable_id is None or not to_addr:
        return zone_named("UTC")
    name = db.session.scalar(
        select(Client.timezone).join(Project, Project.client_id == Client.id)
        .join(Deliverable, Deliverable.project_id == Project.id)
        .join(Contact, Contact.client_id == Client.id)
        .where(Deliverable.id == deliverable_id, Contact.email == to_addr))
    return zone_named(name)


def render_email(template: str, *, to_addr: str, to_name: str, deliverable_id: int | None,
                 **context: object) -> tuple[str, str, str]:
    """Subject, text and HTML of `emails/<template>.*` for this recipient: the one renderer
    of compose() and of rows rendered later by the send job (notifications/deferred.py)."""
    context = {"to_name": to_name, "agency": current_agency(),
               "zone": recipient_zone(to_addr, deliverable_id), **context}
    return (render_template(f"emails/{template}.subject.txt", **context).strip(),
            render_template(f"emails/{template}.txt", **context),
            render_template(f"emails/{template}.html", **context))


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
    Every template gets `agency` (the identity the client knows) and `zone`, so `when()`
    and `|local_when` show a client's times in the client's zone.
    """
    existing = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key))
    if existing is not None:
        return existing
    subject, body_text, body_html = render_email(
        template, to_addr=to_addr, to_name=to_name, deliverable_id=deliverable_id, **context)
    message = OutboxMessage(
        idempotency_key=idempotency_key,
        to_addr=to_addr,
        to_name=to_name,
        reply_to=reply_to,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        deliverable_id=deliverable_id,
        attachment_certificate_id=attachment.id if attachment is not None else None,
    )
    db.session.add(message)
    db.session.flush()
    send_after_commit(message.id)
    return message
