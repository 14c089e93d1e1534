"""The agency's billing question about requested changes: within the original scope, or a
change request? Staff answer it (not the client) when the work comes back, before the next
version, and can correct it; each answer is one audit event (`decision.classified`, then
`decision.reclassified` with what it was)."""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal import audit
from portal.database import lock_row
from portal.errors import IllegalTransition, InvalidInput, NotAllowed
from portal.extensions import db
from portal.models import Decision, Outcome, RejectionScope, User, Version, utcnow
from portal.permissions import require_staff
from portal.validation import single_line
from portal.workflow.resolutions import MAX_NOTE_LEN

CHOOSE = _l("Choose within the original scope or a change request.")


def classify_change_request(actor: User, decision: Decision, scope: RejectionScope | None,
                            note: str = "", now: datetime | None = None) -> Decision:
    """Record staff's classification of a changes-requested decision, with an optional
    one-line note (what to bill, what was agreed). Given again, it corrects the last one."""
    if not isinstance(actor, User):
        raise NotAllowed(_("Only the team classifies requested changes."))
    require_staff(actor)
    decision = lock_row(Decision, decision.id)  # two colleagues at once: one after the other
    if decision.outcome != Outcome.REJECTED:
        raise IllegalTransition(_("Only requested changes are classified."))
    if scope is None:
        raise InvalidInput(CHOOSE)
    note = single_line(note, _("The note"), MAX_NOTE_LEN) if (note or "").strip() else ""
    was = decision.classification
    # A client's own answer from before staff classified: kept in the trail, not as "was".
    earlier = {"was": was.value} if was else (
        {"client_said": decision.scope.value} if decision.scope else {})
    if was == scope and note == decision.classification_note:
        raise IllegalTransition(_("It is already classified as %(scope)s.", scope=scope.label))
    now = now or utcnow()
    decision.scope, decision.classification_note = scope, note
    decision.classified_by, decision.classified_at = actor, now
    version = db.session.get(Version, decision.version_id)
    deliverable = version.deliverable
    deliverable.last_activity_at = now
    audit.record(actor, "decision.reclassified" if was else "decision.classified", decision,
                 deliverable=deliverable, version=version.number, scope=scope.value,
                 note=note, **earlier)
    return decision
