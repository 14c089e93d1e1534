"""A decision given by phone, in a meeting or by email, recorded by staff on the contact's
behalf. The deciding itself is record_decision's (the same rules, closing and next turn);
this adds who recorded it, how and when it was given, a required note and optional
evidence, and marks the decision as such (IdentityCheck.ON_BEHALF)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from flask_babel import gettext as _

from portal import audit
from portal.errors import IllegalTransition, InvalidInput
from portal.files.evidence import ingest_evidence
from portal.files.storage import Store
from portal.models import (
    Approver,
    ApproverStatus,
    Decision,
    DecisionOnBehalf,
    OnBehalfChannel,
    Outcome,
    RequestStatus,
    User,
)
from portal.permissions import require_staff
from portal.workflow.closing import DECIDED
from portal.workflow.decisions import AlreadyDecided, _checked, record_decision

MAX_NOTE = 5000
EVIDENCE_MAX_MB = 10  # the default; the setting EVIDENCE_MAX_MB is passed in by the view


@dataclass(frozen=True)
class Evidence:
    """An uploaded file as the view received it, and where to keep it."""

    stream: BinaryIO
    name: str
    store: Store
    max_bytes: int = EVIDENCE_MAX_MB * 1024 * 1024


def check_may_record(approver: Approver, by_user: User) -> None:
    """Staff may record for an approver whose request is open and whose turn it is; or
    say why not (nothing is recorded)."""
    require_staff(by_user)
    name = approver.contact.name
    if approver.status in DECIDED or approver.decision is not None:
        raise AlreadyDecided(_("%(name)s has already decided; a decision cannot be recorded "
                               "again.", name=name))
    if approver.status == ApproverStatus.DELEGATED:  # their colleague decides now
        raise IllegalTransition(_("This request was already handed over to a colleague."))
    request = approver.request
    if request.status != RequestStatus.OPEN or approver.status == ApproverStatus.WITHDRAWN:
        raise IllegalTransition(_("This request is closed, so it takes no more decisions. "
                                  "Nothing was recorded."))
    if approver.status == ApproverStatus.QUEUED:
        raise IllegalTransition(_("It is not %(name)s's turn yet: an earlier approver "
                                  "decides first.", name=name))


def record_on_behalf(
    approver: Approver, outcome: Outcome, text: str = "", *,
    conditions: Sequence[str] | None = None, channel: OnBehalfChannel | None,
    given_at: datetime | None, note: str, evidence: Evidence | None, seen_sha256: str | None,
    by_user: User, at: datetime,
) -> Decision:
    """Record `approver`'s decision, given through `channel` at `given_at`, as `by_user`
    at `at`. Everything is checked before anything is stored."""
    check_may_record(approver, by_user)
    if channel is None:
        raise InvalidInput(_("Say how the decision was given: by phone, in a meeting, by "
                             "email or otherwise."))
    note = (note or "").strip()
    if not note:
        raise InvalidInput(_("Write a note: who gave the decision, to whom, and how, so "
                             "anyone reading it later understands."))
    if len(note) > MAX_NOTE:
        raise InvalidInput(_("Please keep the note under %(n)s characters.", n=MAX_NOTE))
    if given_at is None:
        raise InvalidInput(_("Say when the decision was given."))
    if given_at > at:
        raise InvalidInput(_("When the decision was given cannot be in the future."))
    sent = approver.request.sent_at.replace(second=0, microsecond=0)
    if given_at < sent:
        raise InvalidInput(_("The decision cannot have been given before the request was "
                             "sent (%(sent)s UTC).",
                             sent=approver.request.sent_at.strftime("%Y-%m-%d %H:%M")))
    _checked(outcome, text, conditions)  # the decision's own rules, before any file is kept
    row = DecisionOnBehalf(recorded_by=by_user, channel=channel, given_at=given_at,
                           recorded_at=at, note=note)
    if evidence is not None:
        stored = ingest_evidence(evidence.store, evidence.stream, evidence.name,
                                 evidence.max_bytes)
        row.evidence_key, row.evidence_name = stored.key, stored.file_name
        row.evidence_type, row.evidence_size = stored.media_type, stored.size
    decision = record_decision(approver, outcome, text, seen_sha256=seen_sha256,
                               conditions=conditions, now=at, on_behalf=row)
    # The trail says it in words of its own, beside the decision's event (which carries
    # the same facts): who recorded whose decision, how and when it was given.
    audit.record(by_user, "decision.on_behalf", decision,
                 deliverable=approver.request.version.deliverable,
                 contact={"id": approver.contact.id, "name": approver.contact.name},
                 outcome=outcome.value, **row.facts)
    return decision
