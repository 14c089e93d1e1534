"""Observers hear how a request ended: one email each, whichever way it closed.

Every ending goes through workflow/closing.close_request, which records one
`request.<status>` event; this consumer follows those events as reactions.py does.
"""
from __future__ import annotations

from typing import Any

from portal.audit import on
from portal.models import AuditEvent, ReviewRequest
from portal.workflow.observers import tell_outcome


@on("request.approved", "request.approved_with_conditions", "request.changes_requested",
    "request.expired", "request.cancelled")
def _outcome(_actor: Any, request: ReviewRequest, event: AuditEvent) -> None:
    tell_outcome(request, event.at)
