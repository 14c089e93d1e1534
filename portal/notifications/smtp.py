"""The transport: an outbox row becomes a real email over SMTP (or on the console in dev)."""
from __future__ import annotations

import smtplib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

import click

from portal.models import OutboxMessage
from portal.notifications import attachments

QUIET = "MAIL_CONSOLE_QUIET"


@contextmanager
def console_quiet(config: dict[str, Any]) -> Iterator[None]:
    """The console transport echoes nothing meanwhile, whichever thread sends (the
    background jobs too): the demo's fixtures are listed on the Outbox page instead of
    flooding the terminal. A setting of the app, since the sender is another thread."""
    config[QUIET] = True
    try:
        yield
    finally:
        config.pop(QUIET, None)


class DeliveryFailed(Exception):
    """The transport refused or failed; the message will be retried."""


def build_email(message: OutboxMessage, sender: str) -> EmailMessage:
    """Multipart text + HTML with the headers mail servers and clients expect, and the
    files the row names (notifications/attachments.py; ValueError if one cannot be had)."""
    _, sender_addr = parseaddr(sender)
    domain = sender_addr.rpartition("@")[2] or "localhost"
    email = EmailMessage()
    email["Subject"] = message.subject
    email["From"] = sender
    email["To"] = Address(display_name=message.to_name, addr_spec=message.to_addr)
    if message.reply_to:
        email["Reply-To"] = message.reply_to
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = make_msgid(idstring=f"outbox{message.id}", domain=domain)
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.body_text)
    email.add_alternative(message.body_html, subtype="html")
    for item in attachments.for_message(message):  # read now, inside the claim
        email.add_attachment(item.content, maintype=item.maintype, subtype=item.subtype,
                             filename=item.filename)
    return email


def send(email: EmailMessage, config: dict[str, Any]) -> str:
    """Send one built message; returns the transport's name. Raises DeliveryFailed.
    Called outside any database transaction (notifications/delivery.py)."""
    if not config.get("MAIL_SERVER"):
        if not config.get(QUIET) and not config.get("TESTING"):
            text = email.get_body(preferencelist=("plain",))
            click.echo(f"\n--- email to {email['To']} ---\nSubject: {email['Subject']}\n\n"
                       f"{text.get_content() if text else ''}\n--- end of email ---\n",
                       err=True)
        return "console"
    try:
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=15) as smtp:
            if config.get("MAIL_USE_TLS"):
                smtp.starttls()
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
            smtp.send_message(email)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    return "smtp"
