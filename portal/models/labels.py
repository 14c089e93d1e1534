"""The words people read for stored choices (Choice.label), translated when read.

Keyed by the enum's class name and the stored value: one English word can need different
words elsewhere ("open" is a request's, a point's, a condition's; in French "ouverte",
"ouvert"), so each kind has its own context for translators. A value not listed here reads
as its own words through gettext ("in_review" → "in review").
"""
from __future__ import annotations

from flask_babel import LazyString, lazy_gettext

# Lazy (put into words when read), under the name `pybabel extract` knows by default.
from flask_babel import lazy_pgettext as pgettext

LABELS: dict[tuple[str, str], LazyString] = {
    # A review request, as a whole.
    ("RequestStatus", "open"): pgettext("request status", "open"),
    ("RequestStatus", "approved"): pgettext("request status", "approved"),
    ("RequestStatus", "approved_with_conditions"): pgettext("request status",
                                                      "approved with conditions"),
    ("RequestStatus", "changes_requested"): pgettext("request status", "changes requested"),
    ("RequestStatus", "expired"): pgettext("request status", "expired"),
    ("RequestStatus", "cancelled"): pgettext("request status", "cancelled"),
    # One approver of a request.
    ("ApproverStatus", "queued"): pgettext("approver status", "queued"),
    ("ApproverStatus", "invited"): pgettext("approver status", "invited"),
    ("ApproverStatus", "approved"): pgettext("approver status", "approved"),
    ("ApproverStatus", "approved_with_conditions"): pgettext("approver status",
                                                       "approved with conditions"),
    ("ApproverStatus", "rejected"): pgettext("approver status", "changes requested"),
    ("ApproverStatus", "withdrawn"): pgettext("approver status", "withdrawn"),
    ("ApproverStatus", "delegated"): pgettext("approver status", "handed over"),
    # One approver's decision (stored 'rejected', read "changes requested").
    ("Outcome", "approved"): pgettext("decision", "approved"),
    ("Outcome", "approved_with_conditions"): pgettext("decision", "approved with conditions"),
    ("Outcome", "rejected"): pgettext("decision", "changes requested"),
    # A client's point from an earlier version.
    ("PointStatus", "open"): pgettext("point", "open"),
    ("PointStatus", "addressed"): pgettext("point", "addressed"),
    ("PointStatus", "wont_change"): pgettext("point", "won't change"),
    # The approval policy, short (the full words with K and N: workflow.policies.describe).
    ("Policy", "parallel"): pgettext("policy", "parallel"),
    ("Policy", "sequential"): pgettext("policy", "sequential"),
    ("Policy", "any_one"): pgettext("policy", "any-one"),
    ("Policy", "at_least"): pgettext("policy", "K-of-N"),
    # The agency's billing question about requested changes.
    ("RejectionScope", "in_scope"): pgettext("scope", "within the original scope"),
    ("RejectionScope", "change_request"): pgettext("scope", "change request"),
    # A deliverable on the staff board.
    ("DeliverableState", "draft"): pgettext("deliverable state", "draft"),
    ("DeliverableState", "in_review"): pgettext("deliverable state", "in review"),
    ("DeliverableState", "ready"): pgettext("deliverable state", "ready"),
    ("DeliverableState", "delivered"): pgettext("deliverable state", "delivered"),
    ("DeliverableState", "approved"): pgettext("deliverable state", "approved"),
    ("DeliverableState", "approved_with_conditions"): pgettext("deliverable state",
                                                         "approved with conditions"),
    ("DeliverableState", "changes_requested"): pgettext("deliverable state", "changes requested"),
    # A condition of an approval.
    ("ConditionStatus", "open"): pgettext("condition", "open"),
    ("ConditionStatus", "met"): lazy_gettext("met"),
    ("ConditionStatus", "wont_do"): lazy_gettext("won't do"),
    # An email in the outbox (staff and admins).
    ("OutboxStatus", "pending"): pgettext("email", "pending"),
    ("OutboxStatus", "sent"): pgettext("email", "sent"),
    ("OutboxStatus", "failed"): pgettext("email", "failed"),
    ("OutboxStatus", "skipped"): pgettext("email", "not needed"),
    # A staff account's role.
    ("Role", "admin"): pgettext("role", "admin"),
    ("Role", "staff"): pgettext("role", "staff"),
    ("Role", "finance"): pgettext("role", "finance"),
}
