"""Compose emails into the outbox, in the caller's transaction; they go out after commit."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from flask import render_template
from sqlalchemy import select

from portal.extensions import db
from portal.i18n import first_language, in_language
from portal.models import (
    Approver,
    Certificate,
    Client,
    Contact,
    Deliverable,
    OutboxMessage,
    Project,
    ReviewRequest,
    User,
    Version,
)
from portal.models.people import zone_named
from portal.notifications.outbox import send_after_commit
from portal.people.agency import current as current_agency


@dataclass(frozen=True)
class Reader:
    """How one recipient reads an email: the time zone and the language."""

    zone: tzinfo
    language: str


def reader_of(to_addr: str, deliverable_id: int | None) -> Reader:
    """A contact of the deliverable's client reads times in the client's zone, in the
    language they switched to on this deliverable's review page, else their contact's
    (portal.i18n.contact_language); anyone else (staff) reads UTC in their own language,
    else the portal's."""
    if deliverable_id is not None and to_addr:
        contact = db.session.execute(
            select(Contact.id, Contact.language, Client.language.label("client_language"),
                   Client.timezone)
            .join(Client, Contact.client_id == Client.id)
            .join(Project, Project.client_id == Client.id)
            .join(Deliverable, Deliverable.project_id == Project.id)
            .where(Deliverable.id == deliverable_id, Contact.email == to_addr)
            .limit(1)).first()
        if contact is not None:
            switched = db.session.scalar(
                select(Approver.language).join(ReviewRequest)
                .join(Version, ReviewRequest.version_id == Version.id)
                .where(Version.deliverable_id == deliverable_id,
                       Approver.contact_id == contact.id, Approver.language.is_not(None))
                .order_by(Approver.id.desc()).limit(1))
            language = first_language(switched, contact.language, contact.client_language)
            return Reader(zone_named(contact.timezone), language)
    own = db.session.scalar(select(User.language).where(User.email == to_addr)) \
        if to_addr else None
    return Reader(zone_named("UTC"), first_language(own))


def recipient_zone(to_addr: str, deliverable_id: int | None) -> tzinfo:
    """The zone `reader_of` gives this recipient."""
    return reader_of(to_addr, deliverable_id).zone


def render_email(template: str, *, to_addr: str, to_name: str, deliverable_id: int | None,
                 **context: object) -> tuple[str, str, str]:
    """Subject, text and HTML of `emails/<template>.*` for this recipient, in their zone
    and their language: the one renderer of compose() and of rows rendered later by the
    send job (notifications/deferred.py). Words a caller hands in that must follow the
    reader's language are portal.i18n.InReadersLanguage, worked out here."""
    reader = reader_of(to_addr, deliverable_id)
    context = {"to_name": to_name, "agency": current_agency(), "zone": reader.zone,
               "lang": reader.language, **context}
    with in_language(reader.language):
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
    Every template gets `agency` (the identity the client knows), `zone` and `lang`, and
    is rendered in the reader's language (reader_of), so `when()` and `|local_when` show a
    client's times in the client's zone and locale.
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
