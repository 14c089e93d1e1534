"""Approval policies: how many approvals decide a request, and the words for each.

Every policy is one rule, "K approvals of N approvers decide":
- parallel and sequential: K = N (everyone approves; sequential only invites in turn);
- any one of: K = 1;
- at least K of N: K as staff chose.
The request is approved once K approvers have approved, and changes are requested once K
approvals have become impossible (too many requests for changes), or at the first request
for changes when staff chose that it ends the request (`changes_end_request`; with K = N it
makes no difference). `settle` is that rule, and the only place it is written.

Conditions: the request closes the moment the K-th approval arrives, so every approval on
record counts; if any of them has conditions, the request is approved with conditions (each
counted approver's conditions bind the work). A request for changes that did not stop the
request stays on record for staff (and its email went out), but the outcome is approved.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import ngettext

from portal.errors import InvalidInput
from portal.i18n import in_language, portal_language
from portal.models import Outcome, Policy, RequestStatus, ReviewRequest

APPROVALS = frozenset({Outcome.APPROVED, Outcome.APPROVED_WITH_CONDITIONS})
DECIDED_VALUES = frozenset(o.value for o in Outcome)
APPROVAL_VALUES = frozenset(o.value for o in APPROVALS)


@dataclass(frozen=True)
class Rule:
    needed: int  # K: approvals that approve the request
    changes_end: bool  # one request for changes ends it at once


def rule_of(request: ReviewRequest) -> Rule:
    return Rule(request.required_approvals or len(request.approvers),
                request.changes_end_request)


def settle(outcomes: Sequence[Outcome | None], rule: Rule) -> RequestStatus | None:
    """How the request ends given each approver's outcome so far (None: undecided), or
    None while it stays open. Pure: the closing rule of every policy."""
    approvals = [o for o in outcomes if o in APPROVALS]
    changes = sum(o == Outcome.REJECTED for o in outcomes)
    undecided = sum(o is None for o in outcomes)
    if changes and rule.changes_end:
        return RequestStatus.CHANGES_REQUESTED
    if len(approvals) >= rule.needed:
        if Outcome.APPROVED_WITH_CONDITIONS in approvals:
            return RequestStatus.APPROVED_WITH_CONDITIONS
        return RequestStatus.APPROVED
    if len(approvals) + undecided < rule.needed:
        return RequestStatus.CHANGES_REQUESTED
    return None


def settled(request: ReviewRequest) -> RequestStatus | None:
    """`settle` applied to a request's approvers, as their statuses record their decisions
    (a decided approver's status is its outcome's value)."""
    return settle([Outcome(a.status.value) if a.status.value in DECIDED_VALUES else None
                   for a in request.approvers], rule_of(request))


@dataclass(frozen=True)
class Choice:
    """A checked policy as it is stored on the request."""

    policy: Policy
    required_approvals: int | None
    changes_end_request: bool


def checked(policy: Policy, approvers: int, required: int | None = None,
            changes_end: bool = False) -> Choice:
    """The policy staff chose, checked against the number of approvers, in its one stored
    form: "at least 1" is "any one of" (a request for changes then waits for the others),
    "at least N of N" is parallel."""
    if policy == Policy.AT_LEAST:
        if required is None:
            raise InvalidInput(_("Say how many approvals are needed."))
        if not 1 <= required <= max(approvers, 1):
            raise InvalidInput(_("The number of approvals needed must be between 1 and the "
                                 "number of approvers (%(n)s).", n=approvers))
        if required == 1:
            return Choice(Policy.ANY_ONE, 1, False)
        if required == approvers:
            return Choice(Policy.PARALLEL, None, False)
        return Choice(Policy.AT_LEAST, required, False)
    if policy == Policy.ANY_ONE:
        return Choice(Policy.ANY_ONE, 1, changes_end)
    return Choice(policy, None, False)


def describe(request: ReviewRequest) -> str:
    """The policy in plain words, for staff pages, the audit trail and the certificate:
    "Any one of 3 approvers", "At least 2 of 3 approvers", "All 2 approvers, in turn"."""
    n = len(request.approvers)
    match request.policy:
        case Policy.ANY_ONE:
            if request.changes_end_request:
                return ngettext("Any one of %(num)d approver; a request for changes ends it",
                                "Any one of %(num)d approvers; a request for changes ends it",
                                n)
            return ngettext("Any one of %(num)d approver; a request for changes waits for "
                            "the others", "Any one of %(num)d approvers; a request for changes "
                            "waits for the others", n)
        case Policy.AT_LEAST:
            return ngettext("At least %(k)s of %(num)d approver",
                            "At least %(k)s of %(num)d approvers", n,
                            k=request.required_approvals)
        case Policy.SEQUENTIAL:
            return (ngettext("All %(num)d approver, one after another",
                             "All %(num)d approvers, one after another", n) if n > 1
                    else _("1 approver"))
    return (ngettext("All %(num)d approver, at once", "All %(num)d approvers, at once", n)
            if n > 1 else _("1 approver"))


def recorded_words(request: ReviewRequest) -> str:
    """The policy in words as records keep it (the audit chain, webhooks): in the portal's
    language, never in the language of whoever's action wrote the record."""
    with in_language(portal_language()):
        return describe(request)


def for_the_client(request: ReviewRequest) -> str:
    """What the policy means for the approvers reading their review page."""
    match request.policy:
        case Policy.ANY_ONE:
            return _("Any one of you can approve")
        case Policy.AT_LEAST:
            return _("%(k)s of the %(n)s of you need to approve",
                     k=request.required_approvals, n=len(request.approvers))
    return ""


def approvals_so_far(request: ReviewRequest) -> int:
    return sum(a.status.value in APPROVAL_VALUES for a in request.approvers)


def waiting_for(request: ReviewRequest) -> str:
    """Who or what an open request waits for, after "Waiting for": "Jane Doe, John Roe",
    "any one of Jane Doe, John Roe", "2 more approvals (2 of 3)"; "" when nobody is asked."""
    names = ", ".join(a.contact.name for a in request.waiting_on)
    if request.policy == Policy.AT_LEAST:
        k = rule_of(request).needed  # K, read as the closing rule reads it
        more = k - approvals_so_far(request)
        return ngettext("%(num)d more approval (%(k)d of %(n)d)",
                        "%(num)d more approvals (%(k)d of %(n)d)", more, k=k,
                        n=len(request.approvers))
    if request.policy == Policy.ANY_ONE and len(request.waiting_on) > 1:
        return _("any one of %(names)s", names=names)
    return names
