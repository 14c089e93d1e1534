"""The deliverable lifecycle and the client's review: the one place where state changes.

draft --submit--> in_review --reviewed--> ready --deliver--> delivered
delivered --all approved--> approved | approved_with_conditions
delivered --any rejection--> changes_requested --new version--> draft

Modules: lifecycle (staff moves), decisions (the client's), closing (every way a request
ends), invitations and links (who holds a working link), reminders (chasing, escalation,
expiry), workdays (business days), comments, turns (whose move it is), guards (locked
versions). Who may act is portal/permissions.py, shared with people/ and notifications/.
Functions take the acting person (and the time) as arguments, flush, and leave the commit
to the caller.
"""
from portal.workflow.closing import cancel_request
from portal.workflow.decisions import AlreadyDecided, record_decision
from portal.workflow.guards import install_version_lock
from portal.workflow.lifecycle import (
    ReminderPolicy,
    create_deliverable,
    deliver,
    missing_for_delivery,
    review_internally,
    submit_for_review,
    upload_version,
)
from portal.workflow.turns import Turn, whose_turn

__all__ = [
    "AlreadyDecided",
    "ReminderPolicy",
    "Turn",
    "cancel_request",
    "create_deliverable",
    "deliver",
    "install_version_lock",
    "missing_for_delivery",
    "record_decision",
    "review_internally",
    "submit_for_review",
    "upload_version",
    "whose_turn",
]
