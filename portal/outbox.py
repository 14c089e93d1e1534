"""Hand committed outbox rows to a transport.

The database is the source of truth: a row is written in the same transaction as the
change that caused it, and is only handed on after that transaction commits.
"""
from __future__ import annotations

import logging

import click
from flask import current_app
from sqlalchemy import inspect, select

from portal.extensions import db
from portal.mail import NEW_MESSAGES_KEY
from portal.models import OutboxMessage, OutboxStatus, utcnow

log = logging.getLogger(__name__)


def commit(*, echo: bool = True) -> None:
    """Commit the session, then dispatch the messages this transaction wrote."""
    new = db.session.info.pop(NEW_MESSAGES_KEY, [])
    db.session.commit()
    for message in new:
        if inspect(message).persistent:  # rows rolled back since are transient again
            deliver(message.id, echo=echo)


def deliver(message_id: int, *, echo: bool = True) -> None:
    message = db.session.get(OutboxMessage, message_id)
    if message is None or message.status == OutboxStatus.SENT:
        return
    message.attempts += 1
    if echo:
        _print_to_console(message)
    message.status = OutboxStatus.SENT
    message.transport = "console"
    message.sent_at = utcnow()
    db.session.commit()


def _print_to_console(message: OutboxMessage) -> None:
    if current_app.testing:
        return
    click.echo(
        f"\n--- email to {message.to_name} <{message.to_addr}> ---\n"
        f"Subject: {message.subject}\n\n{message.body_text}\n--- end of email ---\n",
        err=True,
    )


def pending_messages() -> list[OutboxMessage]:
    return list(db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING)
        .order_by(OutboxMessage.id)
    ))
