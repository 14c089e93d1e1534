"""The transport: an outbox row becomes a real email over SMTP (or on the console in dev)."""
from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from functools import lru_cache
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
    email["From"] = _header("From", sender)
    # Address() checks the parts; the header is parsed once per distinct recipient.
    email["To"] = _header("To", str(Address(display_name=message.to_name,
                                            addr_spec=message.to_addr)))
    if message.reply_to:
        email["Reply-To"] = _header("Reply-To", message.reply_to)
    email["Date"] = datetime.now(UTC)  # a datetime: nothing to format and parse again
    email["Message-ID"] = make_msgid(idstring=f"outbox{message.id}", domain=domain)
    email["Auto-Submitted"] = _header("Auto-Submitted", "auto-generated")
    email.set_content(message.body_text)
    email.add_alternative(message.body_html, subtype="html")
    for item in attachments.for_message(message):  # read now, inside the claim
        email.add_attachment(item.content, maintype=item.maintype, subtype=item.subtype,
                             filename=item.filename)
    return email


@lru_cache(maxsize=1024)
def _header(name: str, value: str) -> Any:
    """A header parsed once and kept: parsing addresses is much of building an email, and
    the sender, reply-to and many recipients repeat. (Header objects are immutable, and
    EmailMessage takes a parsed one as it is, so its linefeed check is made here.)"""
    if len(value.splitlines()) > 1:
        raise ValueError("Header values may not contain linefeed or carriage return "
                         "characters")
    return email_policy.default.header_factory(name, value)


@contextmanager
def connection(config: dict[str, Any]) -> Iterator[Callable[[EmailMessage], str]]:
    """One SMTP connection for several messages (opened on the first, closed at the end):
    yields `send(email) -> transport name`, which raises DeliveryFailed for that message.
    A refusal (sender, recipient, DATA) fails only its message; once the connection is
    lost, every message after it fails too (retried later) without another try here.
    Used outside any database transaction (notifications/delivery.py)."""
    if not config.get("MAIL_SERVER"):
        yield lambda email: _to_console(email, config)
        return
    session = _Session(config)
    try:
        yield session.send
    finally:
        session.close()


def _to_console(email: EmailMessage, config: dict[str, Any]) -> str:
    if not config.get(QUIET) and not config.get("TESTING"):
        text = email.get_body(preferencelist=("plain",))
        click.echo(f"\n--- email to {email['To']} ---\nSubject: {email['Subject']}\n\n"
                   f"{text.get_content() if text else ''}\n--- end of email ---\n", err=True)
    return "console"


# Refusals of one message: smtplib has reset the transaction, the connection carries on.
_REFUSED = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError,
            smtplib.SMTPNotSupportedError)


class _Session:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.smtp: smtplib.SMTP | None = None
        self.lost = ""  # why the connection is gone, once it is

    def send(self, email: EmailMessage) -> str:
        if self.lost:
            raise DeliveryFailed(self.lost)
        try:
            if self.smtp is None:
                self.smtp = self._open()
            self.smtp.send_message(email)
        except _REFUSED as exc:
            if self.smtp is not None and self.smtp.sock is None:  # a 421: it hung up
                self.lost = f"{type(exc).__name__}: {exc}"
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            self.lost = f"{type(exc).__name__}: {exc}"
            self.close()
            raise DeliveryFailed(self.lost) from exc
        return "smtp"

    def _open(self) -> smtplib.SMTP:
        config = self.config
        smtp = smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=15)
        try:
            if config.get("MAIL_USE_TLS"):
                smtp.starttls()
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        except BaseException:
            smtp.close()
            raise
        return smtp

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
