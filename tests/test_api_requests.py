"""/api/v1 delivery, requests, decisions and comments: each call does what the staff page
does (the same rows, emails and audit events), and the pages show what the API did."""
from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    AuditEvent,
    Comment,
    DeliverableState,
    Observer,
    OnBehalfChannel,
    OutboxMessage,
    Outcome,
    Policy,
    Reminder,
    RequestStatus,
    ReviewRequest,
    Role,
    VersionRender,
    utcnow,
)
from portal.workflow import on_behalf
from portal.workflow.links import LinkState, check_token, issue_token
from tests.conftest import as_sent, future, on_screen

S = DeliverableState
REVOKED_BADGE = '<span class="badge overdue">link revoked'  # beside the approver's name
LINK = re.compile(r"http://portal\.test/r/([A-Za-z0-9_\-.]+)")


@pytest.fixture
def mail(app_config: dict[str, Any], smtp_sink):
    """Real SMTP to the sink, sent by the app's own worker thread (no Redis)."""
    app_config.update({"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_sink.port,
                       "REDIS_URL": ""})
    return smtp_sink


@pytest.fixture
def sam_page(make_browser, staff):
    """Sam's browser on the staff pages."""
    browser = make_browser()
    browser.login(staff.email)
    return lambda deliverable_id: browser.get(
        f"/deliverables/{deliverable_id}").get_data(as_text=True)


def _count(model: Any, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _events(verb: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.verb == verb)))


def _text(email: Any) -> str:
    return email.get_body(preferencelist=("plain",)).get_content()


def _emails_to(address: str) -> list[OutboxMessage]:
    return [as_sent(m) for m in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.to_addr == address)
        .order_by(OutboxMessage.id))]


def _newest_token(address: str) -> str:
    match = LINK.search(_emails_to(address)[-1].body_text)
    assert match
    return match.group(1)


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return response.get_json()


def _has_pages(version_id: int, pages: int) -> None:
    """The version's preview counts this many pages (what a pin's page is checked against)."""
    render = db.session.scalar(select(VersionRender).where(VersionRender.version_id == version_id))
    render.page_count = pages
    db.session.commit()


def _delivery(contacts: list[Any], **extra: Any) -> dict[str, Any]:
    return {"approvers": [c.id for c in contacts], "due_date": future(9).isoformat(), **extra}


# --- delivering --------------------------------------------------------------------------

def test_deliver_through_the_api_emails_the_approvers_in_turn(
        mail, api, make_client, make_project, make_deliverable, staff, sam_page):
    client = make_client(contacts=3)
    d = make_deliverable(S.READY, project=make_project(client))
    first, second, observer = client.contacts[1], client.contacts[0], client.contacts[2]

    response = api.post(f"/api/v1/deliverables/{d.id}/deliver", json=_delivery(
        [first, second], policy="sequential",
        reminders={"first_after_days": 3, "every_days": 4, "max_reminders": 2},
        observers=[observer.id], observers_may_comment=True))

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    request = db.session.get(ReviewRequest, body["id"])
    assert response.headers["Location"].endswith(f"/api/v1/requests/{request.id}")
    assert (request.policy, request.due_date, request.sent_by_id) == (
        Policy.SEQUENTIAL, future(9), staff.id)
    assert (request.reminder_first_after_days, request.reminder_every_days,
            request.reminder_max) == (3, 4, 2)
    assert [a.contact_id for a in request.approvers] == [first.id, second.id]
    assert [a.status for a in request.approvers] == [ApproverStatus.INVITED,
                                                     ApproverStatus.QUEUED]
    db.session.refresh(d)
    assert d.state == S.DELIVERED
    [delivered] = _events("request.delivered")
    assert delivered.actor == f"user:{staff.id}"
    assert db.session.scalar(select(Observer.may_comment)) is True

    assert body["status"] == "open" and body["policy"] == "sequential"
    assert body["policy_words"] == "All 2 approvers, one after another"
    assert body["due_date"] == future(9).isoformat()
    assert body["whose_turn"] == {"side": "client", "label": f"Waiting for {first.name}"}
    assert body["waiting_on"] == [request.approvers[0].id]
    assert [(a["name"], a["status"], a["link_state"]) for a in body["approvers"]] == [
        (first.name, "invited", "valid"), (second.name, "queued", "not_sent")]
    assert body["decisions"] == []
    assert api.get(response.headers["Location"]).get_json() == body

    # The invitation really went out, with a working link; the second waits their turn.
    mail.wait_for(2)
    [invitation] = mail.to(first.email)
    token = LINK.search(_text(invitation)).group(1)
    assert check_token(token).state == LinkState.VALID
    assert check_token(token).approver.id == request.approvers[0].id
    assert len(mail.to(observer.email)) == 1 and mail.to(second.email) == []
    assert "Out with the client" in sam_page(d.id)


def test_missing_pieces_come_back_as_the_domains_message(api, make_deliverable):
    d = make_deliverable(S.READY)
    contact = d.project.client.contacts[0]
    emails = _count(OutboxMessage)

    refused = _problem(api.post(f"/api/v1/deliverables/{d.id}/deliver",
                                json={"approvers": []}), 409)
    assert refused["detail"] == ("This cannot go out yet. Missing: at least one approver; "
                                 "a due date.")
    past = _problem(api.post(f"/api/v1/deliverables/{d.id}/deliver", json={
        "approvers": [contact.id], "due_date": "2020-01-01"}), 409)
    assert past["detail"] == "This cannot go out yet. Missing: a due date in the future."
    gone = _problem(api.post(f"/api/v1/deliverables/{d.id}/deliver",
                             json=_delivery([contact]) | {"approvers": [999999]}), 422)
    assert gone["detail"] == "One of the chosen contacts no longer exists."
    no_k = _problem(api.post(f"/api/v1/deliverables/{d.id}/deliver",
                             json=_delivery([contact], policy="at_least")), 422)
    assert no_k["detail"] == "Say how many approvals are needed."
    reminders = _problem(api.post(f"/api/v1/deliverables/{d.id}/deliver", json=_delivery(
        [contact], reminders={"first_after_days": 2, "every_days": 0, "max_reminders": 99})),
        422)
    assert set(reminders["errors"]["json"]["reminders"]) == {"every_days", "max_reminders"}
    too_many = _problem(api.post(f"/api/v1/deliverables/{d.id}/deliver", json=_delivery(
        [contact], policy="at_least", required_approvals=2)), 422)
    assert too_many["detail"] == ("The number of approvals needed must be between 1 and the "
                                  "number of approvers (1).")
    wrong = _problem(api.post(f"/api/v1/deliverables/{d.id}/deliver",
                              json=_delivery([contact], policy="whenever")), 422)
    assert "policy" in wrong["errors"]["json"]
    _problem(api.post("/api/v1/deliverables/999999/deliver", json=_delivery([contact])), 404)
    _problem(api.post(f"/api/v1/deliverables/{d.id}/deliver", data="{not json",
                      content_type="application/json"), 400)

    assert _count(ReviewRequest) == 0 and _count(OutboxMessage) == emails
    db.session.refresh(d)
    assert d.state == S.READY


def test_a_delivery_retried_with_its_idempotency_key_goes_out_once(api, make_deliverable):
    d = make_deliverable(S.READY)
    payload = _delivery(d.project.client.contacts[:1])
    headers = {"Idempotency-Key": "deliver-homepage-1"}

    first = api.post(f"/api/v1/deliverables/{d.id}/deliver", json=payload, headers=headers)
    again = api.post(f"/api/v1/deliverables/{d.id}/deliver", json=payload, headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(ReviewRequest) == 1 and len(_events("request.delivered")) == 1


def test_at_least_and_any_one_are_read_back_in_words(api, make_client, make_project,
                                                     make_deliverable):
    project = make_project(make_client(contacts=3))
    contacts = project.client.contacts
    at_least = make_deliverable(S.READY, project=project)
    any_one = make_deliverable(S.READY, project=project)

    k_of_n = api.post(f"/api/v1/deliverables/{at_least.id}/deliver",
                      json=_delivery(contacts, policy="at_least", required_approvals=2))
    first = api.post(f"/api/v1/deliverables/{any_one.id}/deliver",
                     json=_delivery(contacts, policy="any_one", changes_end_request=False))

    assert k_of_n.get_json()["policy_words"] == "At least 2 of 3 approvers"
    assert k_of_n.get_json()["required_approvals"] == 2
    assert k_of_n.get_json()["whose_turn"]["label"] == "Waiting for 2 more approvals (2 of 3)"
    assert first.get_json()["policy_words"] == (
        "Any one of 3 approvers; a request for changes waits for the others")
    assert db.session.get(ReviewRequest, first.get_json()["id"]).changes_end_request is False


# --- reading -----------------------------------------------------------------------------

def test_requests_are_listed_by_the_pages_filters_a_page_at_a_time(
        api, make_client, make_project, make_deliverable, staff):
    from portal import workflow

    ours = make_project(make_client())
    theirs = make_deliverable(S.DELIVERED)
    mine = [make_deliverable(S.DELIVERED, project=ours) for _ in range(3)]
    workflow.cancel_request(staff, mine[0].open_request)
    db.session.commit()
    ids = [d.current_version.requests[-1].id for d in mine]

    seen, cursor = [], None
    while True:
        query = f"client_id={ours.client_id}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(f"/api/v1/requests?{query}").get_json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)

    def listed(query: str) -> list[int]:
        response = api.get(f"/api/v1/requests?{query}")
        assert response.status_code == 200, response.get_json()
        return [r["id"] for r in response.get_json()["items"]]

    assert listed(f"status=cancelled&client_id={ours.client_id}") == [ids[0]]
    assert listed(f"deliverable_id={mine[1].id}") == [ids[1]]
    assert listed(f"project_id={ours.id}&status=open") == [ids[2], ids[1]]
    assert theirs.open_request.id in listed("overdue=false&status=open")
    assert listed("overdue=true") == []
    assert _problem(api.get("/api/v1/requests?status=late"), 422)["errors"]["query"]
    assert _problem(api.get("/api/v1/requests?cursor=nonsense"), 422)["detail"]
    _problem(api.get("/api/v1/requests/999999"), 404)
    _problem(api.get("/api/v1/requests/999999/decisions"), 404)


def test_a_longer_page_of_requests_asks_the_database_no_more_often(
        api, make_project, make_deliverable, count_queries):
    project = make_project()
    for _ in range(2):
        make_deliverable(S.DELIVERED, project=project, approvers=2)
    api.get("/api/v1/me")  # the token's first use is noted once, apart from what is counted
    with count_queries() as few:
        assert len(api.get("/api/v1/requests").get_json()["items"]) == 2
    for _ in range(4):
        make_deliverable(S.DELIVERED, project=project, approvers=2)
    with count_queries() as more:
        assert len(api.get("/api/v1/requests").get_json()["items"]) == 6
    assert more.count == few.count


# --- staff's moves -----------------------------------------------------------------------

def test_remind_revoke_resend_and_cancel_do_what_the_page_buttons_do(
        api, make_deliverable, staff, sam_page):
    d = make_deliverable(S.DELIVERED, approvers=2)
    request = d.open_request
    jane, john = request.approvers
    old_token = issue_token(jane)
    base = f"/api/v1/requests/{request.id}"

    reminded = api.post(f"{base}/approvers/{jane.id}/remind")
    assert reminded.status_code == 200, reminded.get_json()
    assert reminded.get_json()["reminders_sent"] == 1
    assert db.session.scalar(select(Reminder.manual).where(Reminder.approver_id == jane.id))
    assert "reminder" in _emails_to(jane.contact.email)[-1].idempotency_key
    assert "1 reminder sent" in sam_page(d.id)

    revoked = api.post(f"{base}/approvers/{jane.id}/revoke")
    assert revoked.status_code == 200
    assert revoked.get_json()["link_state"] == "revoked"
    db.session.refresh(jane)
    assert jane.link_revoked_at is not None and jane.next_reminder_at is None
    assert check_token(old_token).state == LinkState.REVOKED
    assert REVOKED_BADGE in sam_page(d.id)
    assert _problem(api.post(f"{base}/approvers/{jane.id}/remind"), 409)["detail"] == (
        f"{jane.contact.name}'s link is revoked; resend it first.")

    # Reminding the request reminds whoever still holds a live link: John, not Jane.
    everyone = api.post(f"{base}/remind")
    assert everyone.status_code == 200
    counts = {a["id"]: a["reminders_sent"] for a in everyone.get_json()["approvers"]}
    assert counts == {jane.id: 1, john.id: 1}

    resent = api.post(f"{base}/approvers/{jane.id}/resend")
    assert resent.status_code == 200 and resent.get_json()["link_state"] == "valid"
    assert check_token(_newest_token(jane.contact.email)).state == LinkState.VALID
    assert [e.actor for e in _events("link.resent")] == [f"user:{staff.id}"]
    assert REVOKED_BADGE not in sam_page(d.id)

    cancelled = api.post(f"{base}/cancel")
    assert cancelled.status_code == 200
    body = cancelled.get_json()
    assert body["status"] == "cancelled" and body["whose_turn"] is None
    assert {a["status"] for a in body["approvers"]} == {"withdrawn"}
    assert {a["link_state"] for a in body["approvers"]} == {"revoked"}
    db.session.refresh(d)
    assert d.state == S.READY
    assert len(_events("request.cancelled")) == 1
    page = sam_page(d.id)
    assert "Deliver version 1" in page and "Cancel request" not in page
    assert _problem(api.post(f"{base}/cancel"), 409)["detail"]
    assert _problem(api.post(f"{base}/remind"), 409)["detail"].endswith(
        "is not waiting to decide.")
    assert _problem(api.post(f"{base}/approvers/{jane.id}/resend"), 409)["detail"] == (
        "This request is cancelled.")


def test_an_approver_of_another_request_is_not_found_there(api, make_deliverable):
    a, b = make_deliverable(S.DELIVERED), make_deliverable(S.DELIVERED)
    stranger = b.open_request.approvers[0]
    for action in ("remind", "resend", "revoke"):
        _problem(api.post(f"/api/v1/requests/{a.open_request.id}/approvers/{stranger.id}/"
                          f"{action}"), 404)
    db.session.refresh(stranger)
    assert stranger.link_revoked_at is None and stranger.reminders_sent == 0


# --- decisions ---------------------------------------------------------------------------

def test_a_decision_made_on_the_review_page_is_read_through_the_api(
        api, make_deliverable, make_browser, staff):
    d = make_deliverable(S.DELIVERED, approvers=2)
    request = d.open_request
    jane, john = request.approvers
    client = make_browser()
    assert client.get(f"/r/{issue_token(jane)}").status_code == 303
    assert client.get(client.review).status_code == 200
    decided = client.post(f"{client.review}/decision", MultiDict([
        ("choice", "approve_with_conditions"), ("text", "Nice work"),
        ("condition", "Use the new logo"), ("condition", "Fix the footer")]))
    assert decided.status_code == 303
    on_behalf.record_on_behalf(
        john, Outcome.APPROVED, channel=OnBehalfChannel.PHONE,
        given_at=utcnow(), note="Called Sam", evidence=None, seen_sha256=on_screen(john),
        by_user=staff, at=utcnow())
    db.session.commit()

    response = api.get(f"/api/v1/requests/{request.id}/decisions")

    assert response.status_code == 200
    first, second = response.get_json()
    assert first["by"] == {"id": jane.contact.id, "name": jane.contact.name,
                           "email": jane.contact.email}
    assert (first["outcome"], first["note"], first["identity"]) == (
        "approved_with_conditions", "Nice work", "link")
    assert [(c["position"], c["text"], c["status"]) for c in first["conditions"]] == [
        (1, "Use the new logo", "open"), (2, "Fix the footer", "open")]
    assert first["version_sha256"] == d.current_version.sha256 and first["on_behalf"] is None
    assert (second["outcome"], second["identity"]) == ("approved", "on_behalf")
    assert second["on_behalf"]["recorded_by"]["id"] == staff.id
    assert (second["on_behalf"]["channel"], second["on_behalf"]["note"]) == ("phone",
                                                                              "Called Sam")
    read = api.get(f"/api/v1/requests/{request.id}").get_json()
    assert read["status"] == "approved_with_conditions" and read["whose_turn"] is None
    assert read["decisions"] == [first, second]
    assert all(a["decided_at"] for a in read["approvers"])
    assert read["approvers"][0]["last_viewed_at"] is None  # only the page's beacon sets it


# --- comments ----------------------------------------------------------------------------

def test_replies_and_internal_notes_are_posted_and_listed_oldest_first(
        api, make_deliverable, make_browser, staff):
    d = make_deliverable(S.DELIVERED)
    request = d.open_request
    _has_pages(request.version_id, 2)
    url = f"/api/v1/requests/{request.id}/comments"

    reply = api.post(url, json={"body": "Thanks, looking into it"})
    note = api.post(url, json={"body": "Client is fussy about blue", "internal": True,
                               "pin": {"page": 2, "x": 0.25, "y": 0.5}},
                    headers={"Idempotency-Key": "note-1"})
    again = api.post(url, json={"body": "Client is fussy about blue", "internal": True,
                                "pin": {"page": 2, "x": 0.25, "y": 0.5}},
                     headers={"Idempotency-Key": "note-1"})
    box = api.post(url, json={"body": "This box", "pin": {"page": 1, "x": 0.1, "y": 0.1,
                                                           "w": 0.5, "h": 0.2}})

    assert [r.status_code for r in (reply, note, again, box)] == [201] * 4
    assert again.get_json() == note.get_json()
    assert note.get_json()["internal"] is True and note.get_json()["pin"] == {
        "page": 2, "x": 0.25, "y": 0.5, "w": None, "h": None}
    assert reply.get_json()["author"] == {"kind": "staff", "id": staff.id,
                                          "name": staff.name}
    stored = list(db.session.scalars(select(Comment).order_by(Comment.id)))
    assert [(c.body, c.internal, c.page) for c in stored] == [
        ("Thanks, looking into it", False, None), ("Client is fussy about blue", True, 2),
        ("This box", False, 1)]
    assert [e.verb for e in db.session.scalars(select(AuditEvent).where(
        AuditEvent.verb.startswith("comment.")).order_by(AuditEvent.seq))] == [
        "comment.posted", "comment.internal", "comment.posted"]

    first = api.get(f"{url}?limit=2").get_json()
    rest = api.get(f"{url}?limit=2&cursor={first['next_cursor']}").get_json()
    assert [c["id"] for c in first["items"] + rest["items"]] == [c.id for c in stored]
    assert rest["next_cursor"] is None
    assert [c["internal"] for c in first["items"]] == [False, True]

    pins = api.get(f"/api/v1/requests/{request.id}/pins").get_json()
    assert [(p["comment_id"], p["number"], p["page"], p["internal"]) for p in pins] == [
        (stored[1].id, 1, 2, True), (stored[2].id, 2, 1, False)]

    # The client's page shows the reply, never the internal note.
    client = make_browser()
    client.get(f"/r/{issue_token(request.approvers[0])}")
    page = client.get(client.review).get_data(as_text=True)
    assert "Thanks, looking into it" in page and "fussy" not in page


def test_a_comment_the_domain_refuses_is_not_stored(api, make_deliverable):
    d = make_deliverable(S.DELIVERED)
    _has_pages(d.current_version.id, 2)
    url = f"/api/v1/requests/{d.open_request.id}/comments"

    assert _problem(api.post(url, json={"body": "   "}), 422)["detail"] == (
        "Write a comment first.")
    assert _problem(api.post(url, json={"body": "Off the page", "pin": {"page": 3}}),
                    422)["detail"] == "This document has 2 pages; there is no page 3."
    assert _problem(api.post(url, json={"body": "Too wide", "pin": {
        "page": 1, "x": 0.8, "y": 0.1, "w": 0.5, "h": 0.1}}), 422)["detail"] == (
        "The box must be on the page.")
    assert "pin" in _problem(api.post(url, json={"body": "x", "pin": {"page": 1, "x": 2}}),
                             422)["errors"]["json"]
    assert "body" in _problem(api.post(url, json={}), 422)["errors"]["json"]
    _problem(api.post(url, data="{not json", content_type="application/json"), 400)
    assert "body" in _problem(api.post(url, json={"body": "nul\x00"}), 422)["errors"]["json"]
    _problem(api.post("/api/v1/requests/999999/comments", json={"body": "Hi"}), 404)
    _problem(api.get("/api/v1/requests/999999/comments"), 404)
    assert _count(Comment) == 0


# --- who may write -----------------------------------------------------------------------

def test_finance_and_read_only_tokens_read_but_never_write(make_api, make_user, staff,
                                                            make_deliverable):
    ready = make_deliverable(S.READY)
    out = make_deliverable(S.DELIVERED)
    request = out.open_request
    approver = request.approvers[0]
    finance = make_api(make_user(Role.FINANCE))
    read_only = make_api(staff, scopes=("read",))
    writes = [
        (f"/api/v1/deliverables/{ready.id}/deliver", _delivery(ready.project.client.contacts)),
        (f"/api/v1/requests/{request.id}/remind", None),
        (f"/api/v1/requests/{request.id}/approvers/{approver.id}/remind", None),
        (f"/api/v1/requests/{request.id}/approvers/{approver.id}/resend", None),
        (f"/api/v1/requests/{request.id}/approvers/{approver.id}/revoke", None),
        (f"/api/v1/requests/{request.id}/cancel", None),
        (f"/api/v1/requests/{request.id}/comments", {"body": "Hello"}),
    ]
    emails, events = _count(OutboxMessage), _count(AuditEvent)

    for url, payload in writes:
        assert "can look but cannot change work" in _problem(
            finance.post(url, json=payload), 403)["detail"]
        assert "may only read" in _problem(read_only.post(url, json=payload), 403)["detail"]

    assert _count(OutboxMessage) == emails and _count(AuditEvent) == events
    assert _count(ReviewRequest) == 1 and _count(Comment) == 0
    db.session.refresh(approver)
    assert approver.link_revoked_at is None and approver.reminders_sent == 0
    assert request.status == RequestStatus.OPEN and ready.state == S.READY
    for reader in (finance, read_only):
        assert reader.get(f"/api/v1/requests/{request.id}").status_code == 200
        assert reader.get(f"/api/v1/requests/{request.id}/comments").status_code == 200
    assert _count(Approver) == 1


@pytest.mark.parametrize("method, path", [
    ("GET", "/requests/{big}"), ("GET", "/requests/{big}/decisions"),
    ("GET", "/requests/{big}/comments"), ("POST", "/requests/{big}/comments"),
    ("GET", "/requests/{big}/pins"), ("POST", "/requests/{big}/cancel"),
    ("POST", "/requests/{big}/remind"), ("POST", "/requests/1/approvers/{big}/revoke"),
    ("POST", "/deliverables/{big}/deliver")])
def test_an_id_too_big_for_any_row_is_not_found(api, method, path):
    for big in (2**31, 10**20):
        response = api.call(method, "/api/v1" + path.format(big=big), json={"body": "Hi"})
        _problem(response, 404)


def test_no_token_no_answer(app):
    response = app.test_client().get("/api/v1/requests")
    assert _problem(response, 401)["detail"]
