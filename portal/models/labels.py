"""The words people read for stored choices (Choice.label), translated when read.

Keyed by the enum's class name and the stored value: one English word can need different
words elsewhere ("open" is a request's, a point's, a condition's; in French "ouverte",
"ouvert"), so each kind has its own context for translators. A value not listed here reads
as its own words through gettext ("in_review" → "in review").
"""
from __future__ import annotations

from flask_babel import LazyString
from flask_babel import lazy_pgettext as _p

LABELS: dict[tuple[str, str], LazyString] = {
    # A review request, as a whole.
    ("RequestStatus", "open"): _p("request status", "open"),
    ("RequestStatus", "approved"): _p("request status", "approved"),
    ("RequestStatus", "approved_with_conditions"): _p("request status",
                                                      "approved with conditions"),
    ("RequestStatus", "changes_requested"): _p("request status", "changes requested"),
    ("RequestStatus", "expired"): _p("request status", "expired"),
    ("RequestStatus", "cancelled"): _p("request status", "cancelled"),
    # One approver of a request.
    ("ApproverStatus", "queued"): _p("approver status", "queued"),
    ("ApproverStatus", "invited"): _p("approver status", "invited"),
    ("ApproverStatus", "approved"): _p("approver status", "approved"),
    ("ApproverStatus", "approved_with_conditions"): _p("approver status",
                                                       "approved with conditions"),
    ("ApproverStatus", "rejected"): _p("approver status", "changes requested"),
    ("ApproverStatus", "withdrawn"): _p("approver status", "withdrawn"),
    ("ApproverStatus", "delegated"): _p("approver status", "handed over"),
    # One approver's decision (stored 'rejected', read "changes requested").
    ("Outcome", "approved"): _p("decision", "approved"),
    ("Outcome", "approved_with_conditions"): _p("decision", "approved with conditions"),
    ("Outcome", "rejected"): _p("decision", "changes requested"),
    # A client's point from an earlier version.
    ("PointStatus", "open"): _p("point", "open"),
    ("PointStatus", "addressed"): _p("point", "addressed"),
    ("PointStatus", "wont_change"): _p("point", "won't change"),
    # The approval policy, short (the full words with K and N: workflow.policies.describe).
    ("Policy", "parallel"): _p("policy", "parallel"),
    ("Policy", "sequential"): _p("policy", "sequential"),
    ("Policy", "any_one"): _p("policy", "any-one"),
    ("Policy", "at_least"): _p("policy", "K-of-N"),
    # The agency's billing question about requested changes.
    ("RejectionScope", "in_scope"): _p("scope", "within the original scope"),
    ("RejectionScope", "change_request"): _p("scope", "change request"),
    # A deliverable on the staff board.
    ("DeliverableState", "draft"): _p("deliverable state", "draft"),
    ("DeliverableState", "in_review"): _p("deliverable state", "in review"),
    ("DeliverableState", "ready"): _p("deliverable state", "ready"),
    ("DeliverableState", "delivered"): _p("deliverable state", "delivered"),
    ("DeliverableState", "approved"): _p("deliverable state", "approved"),
    ("DeliverableState", "approved_with_conditions"): _p("deliverable state",
                                                         "approved with conditions"),
    ("DeliverableState", "changes_requested"): _p("deliverable state", "changes requested"),
}
