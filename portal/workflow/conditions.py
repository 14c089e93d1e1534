"""The conditions of an approval as a checklist.

A client approving with conditions names them as separate items (`checked_items`, used by
record_decision). Each is tracked: staff mark it met in a later version of the same
deliverable, or won't do with a reason the client sees, and can reopen it. Every move is
one audit event (`condition.met`, `condition.wont_do`, `condition.reopened`).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal import audit
from portal.database import lock_row
from portal.errors import IllegalTransition, InvalidInput, NotAllowed
from portal.extensions import db
from portal.i18n import in_language, portal_language
from portal.models import Condition, ConditionStatus, Decision, User, Version, utcnow
from portal.permissions import require_staff
from portal.validation import single_line
from portal.workflow.resolutions import MAX_NOTE_LEN, checked_resolution

MAX_CONDITIONS = 10
MAX_CONDITION_LEN = 500
NO_CONDITIONS = _l("Write the conditions of your approval.")


def checked_items(items: Iterable[str | None]) -> list[str]:
    """The conditions as typed, blanks dropped (a form sends empty boxes), each one line
    of at most MAX_CONDITION_LEN characters; at least one, at most MAX_CONDITIONS."""
    raw = [item for item in items if item and item.strip()]
    if not raw:
        raise InvalidInput(NO_CONDITIONS)
    if len(raw) > MAX_CONDITIONS:
        raise InvalidInput(_("Please list at most %(most)s conditions; combine the smaller "
                             "ones.", most=MAX_CONDITIONS))
    return [single_line(item, _("Condition %(n)s", n=n), MAX_CONDITION_LEN)
            for n, item in enumerate(raw, start=1)]


def add_conditions(decision: Decision, items: list[str]) -> list[Condition]:
    """The decision's conditions, open, in the order given (already checked)."""
    conditions = [Condition(position=n, text=item, status=ConditionStatus.OPEN)
                  for n, item in enumerate(items, start=1)]
    decision.conditions = conditions
    return conditions


def _decided_version(condition: Condition) -> Version:
    return db.session.get(Version, condition.decision.version_id)


def resolve_condition(
    actor: User, condition: Condition, status: ConditionStatus,
    version: Version | None = None, note: str = "", now: datetime | None = None,
) -> Condition:
    """Staff mark a condition met (in a later version of the same deliverable than the one
    decided on, with an optional note), won't do (with a reason, which the client sees),
    or open again (status OPEN: reopen it, with an optional note for the trail)."""
    if not isinstance(actor, User):
        raise NotAllowed(_("Only the team can mark conditions."))
    require_staff(actor)
    condition = lock_row(Condition, condition.id)  # two colleagues at once: one wins
    decided = _decided_version(condition)
    deliverable = decided.deliverable
    now = now or utcnow()
    note = (note or "").strip()
    if status == ConditionStatus.OPEN:
        return _reopen(actor, condition, note, now)
    if not condition.is_open:
        raise IllegalTransition(_("Condition %(n)s is already marked %(resolution)s. Reopen it "
                                  "first.", n=condition.position,
                                  resolution=condition.resolution))
    version, note = checked_resolution(
        status == ConditionStatus.MET, version, decided, note,
        choose=_("Choose the version that meets the condition."),
        later=_("A condition set on version %(number)s is met in a later version of "
                "%(title)s.", number=decided.number, title=deliverable.title))
    condition.status, condition.note = status, note
    condition.resolved_in_version, condition.resolved_by = version, actor
    condition.resolved_at = now
    deliverable.last_activity_at = now
    audit.record(actor, f"condition.{status.value}", condition, deliverable=deliverable,
                 position=condition.position, text=condition.text, decided_version=decided.number,
                 version=version.number if version else None, note=note)
    return condition


def _reopen(actor: User, condition: Condition, note: str, now: datetime) -> Condition:
    if condition.is_open:
        raise IllegalTransition(_("Condition %(n)s is already open.", n=condition.position))
    note = single_line(note, _("The note"), MAX_NOTE_LEN) if note else ""
    with in_language(portal_language()):  # the trail's words never follow the actor's
        was = condition.resolution
    condition.status, condition.note = ConditionStatus.OPEN, ""
    condition.resolved_in_version, condition.resolved_by = None, None
    condition.resolved_at = None
    deliverable = _decided_version(condition).deliverable
    deliverable.last_activity_at = now
    audit.record(actor, "condition.reopened", condition, deliverable=deliverable,
                 position=condition.position, text=condition.text, was=was, note=note)
    return condition


def reopen_condition(actor: User, condition: Condition, note: str = "",
                     now: datetime | None = None) -> Condition:
    return resolve_condition(actor, condition, ConditionStatus.OPEN, note=note, now=now)
