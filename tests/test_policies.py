"""Approval policies beyond parallel and sequential: "any one of" and "at least K of N".

The closing rule (workflow/policies.settle) is checked on a table of cases and against the
old all-must-approve rule; the rest goes through real pages (staff's delivery form, the
client's links from real emails in the SMTP sink) on SQLite and PostgreSQL.
"""
from __future__ import annotations

import itertools
import json
import re
import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from portal.extensions import db
from portal.models import (
    ApproverStatus,
    AuditEvent,
    Decision,
    Deliverable,
    DeliverableState,
    Outcome,
    Policy,
    RequestStatus,
    ReviewRequest,
)
from portal.notifications.reactions import request_data
from portal.workflow.links import issue_token
from portal.workflow.policies import Rule, settle
from portal.workflow.turns import whose_turn
from tests.conftest import SmtpSink, future

S = DeliverableState
A, C, R = Outcome.APPROVED, Outcome.APPROVED_WITH_CONDITIONS, Outcome.REJECTED
OPEN = None
APPROVED, WITH_CONDITIONS = RequestStatus.APPROVED, RequestStatus.APPROVED_WITH_CONDITIONS
CHANGES = RequestStatus.CHANGES_REQUESTED
LINK = re.compile(r"http://portal\.test(/r/[\w.\-]+)")


# --- the rule, as a table ---------------------------------------------------------------

CASES = [
    # outcomes so far (None: undecided), K, a request for changes ends it -> result
    ((None, None, None), 1, True, OPEN),
    ((A, None, None), 1, True, APPROVED),  # any one of: the first approval decides
    ((C, None, None), 1, False, WITH_CONDITIONS),
    ((R, None, None), 1, True, CHANGES),  # any one of, changes end it
    ((R, None, None), 1, False, OPEN),  # any one of, changes wait for the others
    ((R, R, None), 1, False, OPEN),
    ((R, R, A), 1, False, APPROVED),
    ((R, R, C), 1, False, WITH_CONDITIONS),
    ((R, R, R), 1, False, CHANGES),  # nobody left who could approve
    ((A, None, None), 2, False, OPEN),  # 2 of 3
    ((A, A, None), 2, False, APPROVED),
    ((A, C, None), 2, False, WITH_CONDITIONS),  # any counted approval's conditions
    ((R, A, None), 2, False, OPEN),  # still possible: one more approval
    ((R, A, A), 2, False, APPROVED),  # a request for changes that did not stop it
    ((R, A, C), 2, False, WITH_CONDITIONS),
    ((R, None, None), 2, False, OPEN),
    ((R, R, None), 2, False, CHANGES),  # 2 approvals have become impossible
    ((A, R, R), 2, False, CHANGES),
    ((R, None, None, None), 3, False, OPEN),  # 3 of 4
    ((R, R, None, None), 3, False, CHANGES),
    ((A, A, A, None), 3, False, APPROVED),
    ((A, None), 2, True, OPEN),  # parallel: all of 2
    ((A, A), 2, True, APPROVED),
    ((A, R), 2, True, CHANGES),
    ((None, R), 2, True, CHANGES),  # one request for changes ends everyone-approves
    ((A,), 1, True, APPROVED),
    ((R,), 1, False, CHANGES),
]


@pytest.mark.parametrize(("outcomes", "k", "changes_end", "expected"), CASES)
def test_the_closing_rule(outcomes, k, changes_end, expected):
    assert settle(outcomes, Rule(k, changes_end)) == expected


def _all_must_approve(outcomes: tuple[Outcome | None, ...]) -> RequestStatus | None:
    """The rule before policies existed (parallel and sequential), written out as it was."""
    if R in outcomes:
        return CHANGES
    if None in outcomes:
        return None
    return WITH_CONDITIONS if C in outcomes else APPROVED


def test_the_rule_with_k_equal_to_n_is_the_old_everyone_approves_rule_whatever_the_flag():
    for n in range(1, 5):
        for outcomes in itertools.product((None, A, C, R), repeat=n):
            for changes_end in (True, False):
                assert settle(outcomes, Rule(n, changes_end)) == _all_must_approve(outcomes), \
                    (outcomes, changes_end)


def test_every_combination_closes_exactly_when_it_should():
    """For every N up to 4, K, flag and set of outcomes: open only while K approvals are
    still possible and not yet reached; approved only with K approvals."""
    for n in range(1, 5):
        for k in range(1, n + 1):
            for changes_end in (True, False):
                for outcomes in itertools.product((None, A, C, R), repeat=n):
                    result = settle(outcomes, Rule(k, changes_end))
                    approvals = sum(o in (A, C) for o in outcomes)
                    possible = approvals + outcomes.count(None) >= k
                    if changes_end and R in outcomes:
                        assert result == CHANGES
                    elif approvals >= k:
                        assert result == (WITH_CONDITIONS if C in outcomes else APPROVED)
                    else:
                        assert result == (None if possible else CHANGES), (outcomes, k)


# --- through the pages ------------------------------------------------------------------

def _text(email: Any) -> str:
    return email.get_body(preferencelist=("plain",)).get_content()


def _words(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'").split())


def _ready(make_client, make_project, make_deliverable, approvers: int = 3) -> Deliverable:
    project = make_project(make_client(contacts=approvers))
    return make_deliverable(S.READY, project=project)


def _deliver(sam, d: Deliverable, policy: str, **fields: str):
    form = MultiDict([("contact_id", str(c.id)) for c in d.project.client.contacts])
    form.update({"policy": policy, "due_date": future(7).isoformat(), **fields})
    return sam.post(f"/deliverables/{d.id}/deliver", form)


class Client:
    """One approver with their own browser, arriving from the link in their email."""

    def __init__(self, browser: Any, mail: SmtpSink, contact: Any) -> None:
        self.browser, self.contact = browser, contact
        [email] = [m for m in mail.to(contact.email) if "please review" in m["Subject"]]
        link = LINK.search(_text(email)).group(1)
        assert browser.get(link).status_code == 303
        self.page = browser.review

    def status(self) -> str:
        html = self.browser.get(self.page).get_data(as_text=True)
        return _words(re.search(r'<p class="status" role="status">(.*?)</p>', html).group(1))

    def decide(self, choice: str, text: str = ""):
        self.browser.get(self.page)  # what is on screen, as the form would send it
        return self.browser.post(f"{self.page}/decision", {"choice": choice, "text": text})


def _clients(make_browser, mail, d: Deliverable) -> list[Client]:
    return [Client(make_browser(), mail, c) for c in d.project.client.contacts]


def _request(d: Deliverable) -> ReviewRequest:
    return db.session.scalars(select(ReviewRequest).where(
        ReviewRequest.version_id == d.current_version.id)).one()


def _not_needed(mail: SmtpSink, contact: Any) -> list[Any]:
    return [m for m in mail.to(contact.email) if m["Subject"].startswith("No decision needed")]


def _decisions() -> int:
    return db.session.scalar(select(func.count(Decision.id)))


def test_any_one_of_three_closes_on_the_first_approval_and_tells_the_others(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _ready(make_client, make_project, make_deliverable)
    browser.login(staff.email)
    assert _deliver(browser, d, "any_one", changes_end_request="1").status_code == 302
    request = _request(d)
    assert (request.policy, request.required_approvals) == (Policy.ANY_ONE, 1)
    jane, john, ann = _clients(make_browser, mail, d)
    names = [c.contact.name for c in (jane, john, ann)]
    assert whose_turn(d).label == f"Waiting for any one of {', '.join(names)}"
    assert jane.status() == "Waiting for your decision. Any one of you can approve"

    assert jane.decide("approve").status_code == 303
    db.session.refresh(request)
    assert request.status == RequestStatus.APPROVED and d.state == S.APPROVED
    assert [a.status for a in request.approvers] == [
        ApproverStatus.APPROVED, ApproverStatus.WITHDRAWN, ApproverStatus.WITHDRAWN]
    assert all(a.next_reminder_at is None for a in request.approvers)
    assert jane.status() == f"Approved by {names[0]}"
    for other in (john, ann):
        page = other.browser.get(other.page).get_data(as_text=True)
        assert other.status() == f"Approved by {names[0]}: your decision is no longer needed"
        assert 'value="approve"' not in page  # no way to decide is offered
        [told] = _not_needed(mail, other.contact)
        assert f"is closed. Approved by {names[0]}." in " ".join(_text(told).split())
        assert "no longer needed" in _text(told)
    assert not _not_needed(mail, jane.contact)

    # A decision posted after the close is refused, and nothing is recorded.
    refused = john.decide("approve")
    assert refused.status_code == 409
    assert "no longer needed" in _words(refused.get_data(as_text=True))
    assert _decisions() == 1

    # The audit trail and the staff page say what "approved" meant.
    [closed] = db.session.scalars(select(AuditEvent).where(
        AuditEvent.verb == "request.approved")).all()
    assert json.loads(closed.detail)["policy"] == (
        "Any one of 3 approvers; a request for changes ends it")
    staff_page = _words(browser.get(f"/deliverables/{d.id}").get_data(as_text=True))
    assert "Any one of 3 approvers; a request for changes ends it" in staff_page


def test_any_one_where_a_request_for_changes_ends_it(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _ready(make_client, make_project, make_deliverable)
    browser.login(staff.email)
    _deliver(browser, d, "any_one", changes_end_request="1")
    jane, john, ann = _clients(make_browser, mail, d)
    assert john.decide("request_changes", "The logo is wrong").status_code == 303
    request = _request(d)
    assert request.status == RequestStatus.CHANGES_REQUESTED and d.state == S.CHANGES_REQUESTED
    said = f"Changes requested by {john.contact.name}: your decision is no longer needed"
    assert jane.status() == ann.status() == said
    assert len(_not_needed(mail, jane.contact)) == len(_not_needed(mail, ann.contact)) == 1
    assert jane.decide("approve").status_code == 409
    assert _decisions() == 1


def test_any_one_where_a_request_for_changes_waits_for_the_others(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _ready(make_client, make_project, make_deliverable)
    browser.login(staff.email)
    _deliver(browser, d, "any_one", changes_end_request="0")
    jane, john, ann = _clients(make_browser, mail, d)
    john.decide("request_changes", "The logo is wrong")
    request = _request(d)
    assert request.status == RequestStatus.OPEN and d.state == S.DELIVERED
    assert not _not_needed(mail, jane.contact)
    assert john.status() == (f"Your decision is recorded. Waiting for any one of "
                             f"{jane.contact.name}, {ann.contact.name}")

    assert ann.decide("approve").status_code == 303
    db.session.refresh(request)
    assert request.status == RequestStatus.APPROVED and d.state == S.APPROVED
    assert john.status() == f"Approved by {ann.contact.name}"  # not "by everyone"
    assert len(_not_needed(mail, jane.contact)) == 1
    assert not _not_needed(mail, john.contact)  # he decided; his receipt says so


def test_two_of_three_approves_on_the_second_approval(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _ready(make_client, make_project, make_deliverable)
    browser.login(staff.email)
    assert _deliver(browser, d, "at_least", required_approvals="2").status_code == 302
    request = _request(d)
    assert (request.policy, request.required_approvals) == (Policy.AT_LEAST, 2)
    jane, john, ann = _clients(make_browser, mail, d)
    assert whose_turn(d).label == "Waiting for 2 more approvals (2 of 3)"
    assert jane.status() == "Waiting for your decision. 2 of the 3 of you need to approve"

    jane.decide("approve_with_conditions", "Fix the footer")
    db.session.refresh(request)
    assert request.status == RequestStatus.OPEN
    assert whose_turn(d).label == "Waiting for 1 more approval (2 of 3)"
    assert ann.decide("approve").status_code == 303
    db.session.refresh(request)
    assert request.status == RequestStatus.APPROVED_WITH_CONDITIONS
    assert john.status() == (f"Approved by {jane.contact.name} and {ann.contact.name}, with "
                             "conditions: your decision is no longer needed")
    assert len(_not_needed(mail, john.contact)) == 1
    assert "At least 2 of 3 approvers" in _text(_not_needed(mail, john.contact)[0])
    assert john.decide("approve").status_code == 409
    assert _decisions() == 2
    # Webhook receivers learn what "approved" needed.
    assert request_data(request)["policy"] == {
        "kind": "at_least", "words": "At least 2 of 3 approvers", "required_approvals": 2,
        "changes_end_request": False}


def test_two_of_three_with_two_requests_for_changes_closes_as_changes_requested(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    d = _ready(make_client, make_project, make_deliverable)
    browser.login(staff.email)
    _deliver(browser, d, "at_least", required_approvals="2")
    jane, john, ann = _clients(make_browser, mail, d)
    jane.decide("request_changes", "Too dark")
    request = _request(d)
    assert request.status == RequestStatus.OPEN  # two approvals are still possible
    john.decide("request_changes", "Too small")
    db.session.refresh(request)
    assert request.status == RequestStatus.CHANGES_REQUESTED and d.state == S.CHANGES_REQUESTED
    assert ann.status() == (f"Changes requested by {jane.contact.name} and "
                            f"{john.contact.name}: your decision is no longer needed")
    assert len(_not_needed(mail, ann.contact)) == 1


@pytest.mark.parametrize(("k", "message"), [
    ("0", "between 1 and the number of approvers (3)"),
    ("4", "between 1 and the number of approvers (3)"),
    ("two", "Say how many approvals are needed, as a whole number."),
    ("", "Say how many approvals are needed, as a whole number."),
])
def test_the_number_of_approvals_is_checked_and_nothing_typed_is_lost(
        app, browser, staff, make_client, make_project, make_deliverable, k, message):
    d = _ready(make_client, make_project, make_deliverable)
    browser.login(staff.email)
    response = _deliver(browser, d, "at_least", required_approvals=k, reminder_first="3",
                        reminder_every="2", reminder_max="4")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in _words(html)
    # What was typed comes back: the policy chosen, the number, the approvers, the rest.
    assert re.search(r'value="at_least" checked', html)
    assert f'name="required_approvals" min="1" max="99" inputmode="numeric" value="{k}"' in html
    for contact in d.project.client.contacts:
        assert f'value="{contact.id}" checked' in html
    assert f'value="{future(7).isoformat()}"' in html and 'name="reminder_first" min="0" ' \
        'max="30" value="3"' in html
    assert db.session.scalar(select(func.count(ReviewRequest.id))) == 0
    assert db.session.get(Deliverable, d.id).state == S.READY


def test_the_number_counts_only_for_at_least_and_the_edges_take_their_one_stored_form(
        app, browser, staff, make_client, make_project, make_deliverable):
    browser.login(staff.email)
    stored = []
    for policy, k in (("parallel", "0"), ("at_least", "1"), ("at_least", "3")):
        d = _ready(make_client, make_project, make_deliverable)
        assert _deliver(browser, d, policy, required_approvals=k).status_code == 302
        request = _request(d)
        stored.append((request.policy, request.required_approvals,
                       request.changes_end_request))
    assert stored == [
        (Policy.PARALLEL, None, False),  # the number is ignored unless "at least"
        (Policy.ANY_ONE, 1, False),  # at least 1: any one, changes wait for the others
        (Policy.PARALLEL, None, False),  # at least 3 of 3: everyone approves
    ]


def test_two_approvals_at_once_on_any_one_close_it_once(
        app, browser, staff, make_client, make_project, make_deliverable):
    """Two approvers press Approve together: one decision, one close, one refusal."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("SQLite takes one writer at a time; the race is PostgreSQL's")
    from tests.test_load_faults import Visitor, served

    d = _ready(make_client, make_project, make_deliverable, approvers=2)
    browser.login(staff.email)
    _deliver(browser, d, "any_one", changes_end_request="1")
    request = _request(d)
    tokens = [issue_token(a) for a in request.approvers]
    replies: dict[int, Any] = {}
    with served(app) as base:
        visitors = [Visitor(base, timeout=20) for _ in tokens]
        for visitor, token in zip(visitors, tokens, strict=True):
            visitor.open_link(token)
        barrier = threading.Barrier(len(visitors))

        def approve(i: int) -> None:
            barrier.wait(timeout=10)
            replies[i] = visitors[i].approve()
        threads = [threading.Thread(target=approve, args=(i,), daemon=True) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in threads), "an approval got no answer"
    assert sorted(r.status for r in replies.values()) == [303, 409], replies
    db.session.expire_all()
    assert _decisions() == 1
    verbs = db.session.scalars(select(AuditEvent.verb).where(
        AuditEvent.verb.like("request.%"))).all()
    assert verbs.count("request.approved") == 1
    db.session.refresh(request)
    assert request.status == RequestStatus.APPROVED
    assert sorted(a.status.value for a in request.approvers) == ["approved", "withdrawn"]


def test_the_trail_keeps_the_policy_in_the_portals_language_whoever_closes_it(
        mail, app, browser, staff, make_client, make_project, make_deliverable, make_browser):
    """The audit chain is evidence: its words must not follow the language of whoever's
    action wrote them (a German client's approval closes the request here)."""
    d = _ready(make_client, make_project, make_deliverable, approvers=1)
    [contact] = d.project.client.contacts
    contact.language = "de"
    db.session.commit()
    browser.login(staff.email)
    assert _deliver(browser, d, "any_one", changes_end_request="1").status_code == 302
    [invitation] = mail.to(contact.email)
    jane = make_browser()
    assert jane.get(LINK.search(_text(invitation)).group(1)).status_code == 303
    assert 'lang="de"' in jane.get(jane.review).get_data(as_text=True)
    assert jane.post(f"{jane.review}/decision", {"choice": "approve"}).status_code == 303
    details = [json.loads(e.detail) for e in db.session.scalars(select(AuditEvent).where(
        AuditEvent.verb.in_(("request.delivered", "request.approved"))))]
    assert [d.get("policy_words") or d.get("policy") for d in details] == [
        "Any one of 1 approver; a request for changes ends it"] * 2
