"""Staff record a decision a contact gave by phone, in a meeting or by email, on their
behalf (on the staff blueprint), and download its evidence."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, current_app, request
from flask.wrappers import Response
from flask_babel import gettext as _
from flask_login import login_required

from portal.errors import InvalidInput
from portal.files.storage import file_store
from portal.models import Approver, DecisionOnBehalf, OnBehalfChannel, Outcome, utcnow
from portal.reports.on_behalf import on_behalf_sentence
from portal.views.common import (
    act_on_deliverable,
    acting_user,
    get_or_404,
    send_stored,
    staff_only,
)
from portal.views.staff import bp
from portal.workflow.on_behalf import EVIDENCE_MAX_MB, Evidence, record_on_behalf

CHOICES = {"approve": Outcome.APPROVED, "approve_with_conditions": Outcome.APPROVED_WITH_CONDITIONS,
           "request_changes": Outcome.REJECTED}
CHANNELS = {c.value: c for c in OnBehalfChannel}

# The sentence, for every template that shows a decision (pages, emails, the certificate).
bp.add_app_template_global(on_behalf_sentence, "on_behalf_sentence")


def _given_at(raw: str) -> datetime | None:
    """The form's date and time (staff pages read UTC): "2026-11-30T14:05"."""
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidInput(_("Give the date and time like 2026-11-30 14:05.")) from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _evidence() -> Evidence | None:
    upload = request.files.get("evidence")
    if upload is None or not upload.filename:
        return None
    limit = int(current_app.config.get("EVIDENCE_MAX_MB", EVIDENCE_MAX_MB))
    return Evidence(upload.stream, upload.filename, file_store(), limit * 1024 * 1024)


@bp.post("/approvers/<int:approver_id>/on-behalf")
@staff_only
def record_on_behalf_view(approver_id: int):
    approver = get_or_404(Approver, approver_id)
    form = request.form

    def action(_deliverable: object) -> None:
        choice = form.get("choice", "")
        if choice not in CHOICES:
            raise InvalidInput(_("Choose what %(name)s decided: approve, approve with "
                                 "conditions, or request changes.", name=approver.contact.name))
        conditions = form.getlist("condition") if "condition" in form else None
        record_on_behalf(
            approver, CHOICES[choice], form.get("text", ""),
            conditions=conditions if choice == "approve_with_conditions" else None,
            channel=CHANNELS.get(form.get("channel", "")),
            given_at=_given_at(form.get("given_at", "")), note=form.get("note", ""),
            evidence=_evidence(), seen_sha256=form.get("sha256"), by_user=acting_user(),
            at=utcnow())
    deliverable_id = approver.request.version.deliverable_id
    return act_on_deliverable(deliverable_id, action,
                              _("Decision recorded on behalf of %(name)s. They have been "
                                "sent a receipt.", name=approver.contact.name))


@bp.get("/on-behalf/<int:row_id>/evidence")
@login_required
def on_behalf_evidence(row_id: int) -> Response:
    """The evidence file, for the agency's signed-in people only; never shown inline."""
    row = get_or_404(DecisionOnBehalf, row_id)
    if not row.evidence_key:
        abort(404)
    response = send_stored(row.evidence_key, row.evidence_type or "application/octet-stream",
                           row.evidence_name or "evidence")
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response
