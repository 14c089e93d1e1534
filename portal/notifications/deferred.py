"""Emails whose bodies are rendered by the send job, not by whoever queued them.

A bulk producer (the reminder sweep) writes outbox rows naming a template and its context;
the sending side calls `ensure_rendered` on each row before building the email, inside the
attempt's transaction, so the stored copy ends up with the rendered subject and bodies.

The context is JSON: plain values go to the template as they are, and a "link" entry
(approver id and link generation, written by workflow/links.link_email_row) becomes what
send_review_link gives its templates, the review link signed at render time; one that is no
longer needed by then (the request closed, the approver decided, the link was revoked) is
not rendered: delivery.NotNeeded, and the row ends skipped. The recipient,
reply-to and deliverable are the row's own columns, so the zone and agency rules are
compose()'s (render_email).
"""
from __future__ import annotations

import json
from typing import Any

from portal.models import OutboxMessage
from portal.notifications.compose import render_email


def _template_context(stored: dict[str, Any]) -> dict[str, Any]:
    context = dict(stored)
    link = context.pop("link", None)
    if link is not None:
        # Imported here: workflow.links composes emails, so it imports this package.
        from portal.workflow.links import deferred_link_context

        context.update(deferred_link_context(link["approver_id"], link["generation"]))
    return context


def ensure_rendered(message: OutboxMessage) -> None:
    """Render the subject and bodies of a row queued unrendered, once (it then reads as any
    other row); a no-op for any other row. The caller's transaction stores the text.
    Raises delivery.NotNeeded (leaving the row as it was) for a link no longer wanted."""
    if message.deferred_template is None:
        return
    context = _template_context(json.loads(message.deferred_context or "{}"))
    message.subject, message.body_text, message.body_html = render_email(
        message.deferred_template, to_addr=message.to_addr, to_name=message.to_name,
        deliverable_id=message.deliverable_id, **context)
    message.deferred_template = None
    message.deferred_context = None
