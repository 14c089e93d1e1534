"""The deliverable lifecycle, the one place where state changes.

draft --submit--> in_review --reviewed--> ready --deliver--> delivered
delivered --all approved--> approved | approved_with_conditions
delivered --any rejection--> changes_requested --new version--> draft
Functions take the acting person as an argument, flush, and leave the commit to the caller.
"""
from portal.workflow.decisions import AlreadyDecided, cancel_request, record_decision
from portal.workflow.guards import install_version_lock
from portal.workflow.lifecycle import (
    ReminderPolicy,
    create_deliverable,
    deliver,
    invite,
    missing_for_delivery,
    review_internally,
    submit_for_review,
    today_utc,
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
    "invite",
    "missing_for_delivery",
    "record_decision",
    "review_internally",
    "submit_for_review",
    "today_utc",
    "upload_version",
    "whose_turn",
]
