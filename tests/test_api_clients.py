"""/api/v1 clients, contacts and projects: the same domain functions as the clients pages,
so the same refusals, audit events and effects; what the caller sees and what is stored."""
from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    Approver,
    AuditEvent,
    Client,
    Contact,
    DeliverableState,
    Project,
    Role,
)

PROBLEM = "application/problem+json"
FINANCE_REFUSAL = "Your role (finance) can look but cannot change work."
READ_ONLY_REFUSAL = "This token may only read."


def count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def work_events() -> int:
    """Audit events of the work (not the tokens the test made for itself)."""
    return db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.verb.not_like("api_token.%")))


def events(verb: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.verb == verb)
                                   .order_by(AuditEvent.seq)))


def assert_problem(response: Any, status: int, detail: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status
    if detail is not None:
        assert detail in body.get("detail", ""), body
    return body


def field_errors(response: Any) -> dict[str, Any]:
    return assert_problem(response, 422)["errors"]["json"]


# --- clients ---------------------------------------------------------------------------

def test_create_client_with_contacts_answers_201_and_stores_them(api, staff) -> None:
    response = api.post("/api/v1/clients", json={
        "name": "  Acme Corp ", "language": "de",
        "contacts": [{"name": "Jane Roe", "email": "Jane@Acme.example"},
                     {"name": "Max Muster"}]})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    client = db.session.get(Client, body["id"])
    assert response.headers["Location"] == f"/api/v1/clients/{client.id}"
    assert (client.name, client.language, client.timezone) == ("Acme Corp", "de", "UTC")
    assert [(c.name, c.email) for c in client.contacts] == [
        ("Jane Roe", "jane@acme.example"), ("Max Muster", None)]
    assert body["name"] == "Acme Corp" and body["language"] == "de"
    assert body["require_code_default"] is False and body["direct_handover"] is False
    assert [(c["name"], c["email"], c["language"], c["client_id"]) for c in body["contacts"]] == [
        ("Jane Roe", "jane@acme.example", None, client.id), ("Max Muster", None, None, client.id)]
    created = events("client.created")
    assert [(e.actor, e.subject_id) for e in created] == [(f"user:{staff.id}", client.id)]
    assert len(events("contact.added")) == 2
    assert api.get(response.headers["Location"]).get_json() == body


def test_client_list_pages_by_cursor(api, make_client) -> None:
    first, second, third = make_client("Alpha"), make_client("Beta"), make_client("Gamma")
    page = api.get("/api/v1/clients?limit=2")
    assert page.status_code == 200
    body = page.get_json()
    assert [c["name"] for c in body["items"]] == ["Gamma", "Beta"]  # newest first
    assert len(body["items"][0]["contacts"]) == 2
    following = api.get(f"/api/v1/clients?limit=2&cursor={body['next_cursor']}").get_json()
    assert [c["id"] for c in following["items"]] == [first.id]
    assert following["next_cursor"] is None
    assert {second.id, third.id} == {c["id"] for c in body["items"]}


@pytest.mark.parametrize("query", ["cursor=not-ours", "cursor=aWQ6YWJj", "limit=0",
                                   "limit=201", "limit=many"])
def test_a_bad_cursor_or_limit_is_a_422_problem(api, make_client, query: str) -> None:
    make_client()
    assert_problem(api.get(f"/api/v1/clients?{query}"), 422)


def test_unknown_ids_are_404_problems(api) -> None:
    for url in ("/api/v1/clients/999", "/api/v1/clients/999/contacts", "/api/v1/contacts/999",
                "/api/v1/projects/999", "/api/v1/clients/99999999999999999999999"):
        assert_problem(api.get(url), 404)
    assert_problem(api.patch("/api/v1/clients/999", json={"timezone": "UTC"}), 404)
    assert_problem(api.post("/api/v1/clients/999/contacts", json={"name": "Jo"}), 404)
    assert_problem(api.patch("/api/v1/contacts/999", json={"name": "Jo"}), 404)


@pytest.mark.parametrize("body, field", [
    ({}, "name"),
    ({"name": 12}, "name"),
    ({"name": "Acme", "language": "xx"}, "language"),
    ({"name": "Acme", "contacts": [{"email": "jane@acme.example"}]}, "contacts"),
    ({"name": "Acme", "contacts": "Jane"}, "contacts"),
    ({"name": "Acme", "colour": "red"}, "colour"),
])
def test_malformed_client_is_refused_by_field_and_nothing_is_saved(api, body: dict[str, Any],
                                                                   field: str) -> None:
    assert field in field_errors(api.post("/api/v1/clients", json=body))
    assert count(Client) == 0 and count(Contact) == 0 and work_events() == 0


def test_the_domain_refusals_come_through_as_the_problem_detail(api, make_client) -> None:
    make_client("Acme Corp")
    assert_problem(api.post("/api/v1/clients", json={"name": "ACME corp"}), 422,
                   "A client called “ACME corp” already exists.")
    bad_email = api.post("/api/v1/clients", json={
        "name": "Globex", "contacts": [{"name": "Hank", "email": "hank@"}]})
    assert_problem(bad_email, 422, "“hank@” is not a valid email address")
    assert_problem(api.post("/api/v1/clients", json={"name": "Two\nlines"}), 422,
                   "The client's name contains a line break")
    assert_problem(api.post("/api/v1/clients", json={"name": "x" * 201}), 422,
                   "The client's name is longer than 200 characters.")
    assert [c.name for c in db.session.scalars(select(Client))] == ["Acme Corp"]
    assert count(Contact) == 2 and events("client.created") == []


def test_client_settings_change_through_the_domain(api, staff, make_client) -> None:
    client = make_client()
    response = api.patch(f"/api/v1/clients/{client.id}", json={
        "language": "fr", "timezone": "Europe/Paris", "require_code_default": True,
        "direct_handover": True})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["language"], body["timezone"], body["require_code_default"],
            body["direct_handover"]) == ("fr", "Europe/Paris", True, True)
    client = db.session.get(Client, client.id)
    assert (client.language, client.timezone, client.require_code_default,
            client.direct_handover) == ("fr", "Europe/Paris", True, True)
    for verb in ("client.language", "client.timezone", "client.code_default",
                 "client.direct_handover"):
        assert [e.actor for e in events(verb)] == [f"user:{staff.id}"], verb
    back = api.patch(f"/api/v1/clients/{client.id}", json={"language": None,
                                                            "direct_handover": False})
    assert back.get_json()["language"] is None
    client = db.session.get(Client, client.id)
    assert client.language is None and client.direct_handover is False
    assert client.require_code_default is True  # not sent, not changed


def test_a_refused_setting_saves_none_of_the_request(api, make_client) -> None:
    client = make_client()
    refused = api.patch(f"/api/v1/clients/{client.id}",
                        json={"language": "de", "timezone": "Mars/Olympus"})
    assert_problem(refused, 422, "Choose the client's time zone from the list")
    client = db.session.get(Client, client.id)
    assert client.language is None and client.timezone == "UTC"
    assert events("client.language") == []
    assert "language" in field_errors(api.patch(f"/api/v1/clients/{client.id}",
                                                json={"language": "klingon"}))
    empty = field_errors(api.patch(f"/api/v1/clients/{client.id}", json={}))
    assert empty == {"_schema": ["Send at least one field to change."]}
    assert "name" in field_errors(api.patch(f"/api/v1/clients/{client.id}",
                                            json={"name": "Renamed"}))
    for not_a_boolean in ("yes", 1, None):
        assert "direct_handover" in field_errors(api.patch(
            f"/api/v1/clients/{client.id}", json={"direct_handover": not_a_boolean}))
    assert_problem(api.patch(f"/api/v1/clients/{client.id}", data="{language: de",
                             content_type="application/json"), 400)
    client = db.session.get(Client, client.id)
    assert client.language is None and client.direct_handover is False


# --- who may write ---------------------------------------------------------------------

def test_a_finance_user_reads_but_is_refused_every_write(make_api, make_user, make_client,
                                                         staff) -> None:
    finance = make_api(make_user(Role.FINANCE))
    client = make_client("Acme")
    contact = client.contacts[0]
    assert finance.get(f"/api/v1/clients/{client.id}").status_code == 200
    assert finance.get("/api/v1/projects").status_code == 200
    writes = [
        finance.post("/api/v1/clients", json={"name": "Globex"}),
        finance.patch(f"/api/v1/clients/{client.id}", json={"timezone": "Europe/Berlin"}),
        finance.patch(f"/api/v1/clients/{client.id}", json={"direct_handover": True}),
        finance.post(f"/api/v1/clients/{client.id}/contacts", json={"name": "Jo"}),
        finance.patch(f"/api/v1/contacts/{contact.id}", json={"name": "Renamed"}),
        finance.post("/api/v1/projects", json={"client_id": client.id, "name": "Site",
                                               "owner_id": staff.id}),
    ]
    for response in writes:
        assert_problem(response, 403, FINANCE_REFUSAL)
    client = db.session.get(Client, client.id)
    assert client.timezone == "UTC" and client.direct_handover is False
    assert count(Client) == 1 and count(Contact) == 2 and count(Project) == 0
    assert db.session.get(Contact, contact.id).name == contact.name
    assert work_events() == 0


def test_a_read_only_token_is_refused_writes(make_api, staff, make_client) -> None:
    reader = make_api(staff, scopes=("read",))
    client = make_client()
    assert reader.get("/api/v1/clients").status_code == 200
    assert_problem(reader.post("/api/v1/clients", json={"name": "Globex"}), 403,
                   READ_ONLY_REFUSAL)
    assert_problem(reader.patch(f"/api/v1/clients/{client.id}", json={"timezone": "UTC"}), 403,
                   READ_ONLY_REFUSAL)
    assert_problem(reader.post("/api/v1/projects", json={"client_id": client.id,
                                                         "name": "Site"}), 403)
    assert count(Client) == 1 and count(Project) == 0


def test_no_token_is_a_401_problem(app) -> None:
    response = app.test_client().get("/api/v1/clients")
    assert_problem(response, 401)


# --- Idempotency-Key -------------------------------------------------------------------

def test_the_same_key_and_body_create_one_client(api) -> None:
    body = {"name": "Acme", "contacts": [{"name": "Jane", "email": "jane@acme.example"}]}
    key = {"Idempotency-Key": "7f1c2a3e-client-1"}
    first = api.post("/api/v1/clients", json=body, headers=key)
    again = api.post("/api/v1/clients", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(Client) == 1 and count(Contact) == 1 and len(events("client.created")) == 1
    other = api.post("/api/v1/clients", json={"name": "Globex"}, headers=key)
    assert_problem(other, 422, "This Idempotency-Key was already used for a different request.")
    assert count(Client) == 1
    fresh = api.post("/api/v1/clients", json={"name": "Globex"},
                     headers={"Idempotency-Key": "another"})
    assert fresh.status_code == 201 and count(Client) == 2


def test_a_refused_create_is_not_kept_for_its_key(api, make_client) -> None:
    taken = make_client("Acme")
    key = {"Idempotency-Key": "retry-me"}
    assert_problem(api.post("/api/v1/clients", json={"name": "Acme"}, headers=key), 422)
    db.session.delete(taken.contacts[0])
    db.session.delete(taken.contacts[1])
    db.session.delete(taken)
    db.session.commit()
    assert api.post("/api/v1/clients", json={"name": "Acme"}, headers=key).status_code == 201


# --- contacts --------------------------------------------------------------------------

def test_contacts_are_listed_added_and_read(api, staff, make_client) -> None:
    client, other = make_client("Acme", contacts=3), make_client("Globex")
    page = api.get(f"/api/v1/clients/{client.id}/contacts?limit=2").get_json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = api.get(f"/api/v1/clients/{client.id}/contacts?cursor={page['next_cursor']}")
    seen = [c["id"] for c in page["items"] + rest.get_json()["items"]]
    assert sorted(seen) == sorted(c.id for c in client.contacts)
    assert rest.get_json()["next_cursor"] is None

    added = api.post(f"/api/v1/clients/{client.id}/contacts",
                     json={"name": "Jane Roe", "email": "JANE@acme.example", "language": "es"})
    assert added.status_code == 201, added.get_json()
    contact = db.session.get(Contact, added.get_json()["id"])
    assert added.headers["Location"] == f"/api/v1/contacts/{contact.id}"
    assert (contact.client_id, contact.name, contact.email, contact.language) == (
        client.id, "Jane Roe", "jane@acme.example", "es")
    assert api.get(f"/api/v1/contacts/{contact.id}").get_json() == added.get_json()
    assert [e.subject_id for e in events("contact.added")] == [contact.id]
    assert len(other.contacts) == 2


def test_contact_refusals_save_nothing(api, make_client) -> None:
    client = make_client("Acme")
    taken = client.contacts[0].email
    assert_problem(api.post(f"/api/v1/clients/{client.id}/contacts",
                            json={"name": "Dup", "email": taken.upper()}),
                   422, f"Acme already has a contact with the email {taken}.")
    assert_problem(api.post(f"/api/v1/clients/{client.id}/contacts",
                            json={"name": "Bad", "email": "not an address"}), 422,
                   "is not a valid email address")
    assert "name" in field_errors(api.post(f"/api/v1/clients/{client.id}/contacts", json={}))
    assert "language" in field_errors(api.post(f"/api/v1/clients/{client.id}/contacts",
                                               json={"name": "Jo", "language": "EN"}))
    assert count(Contact) == 2 and events("contact.added") == []


def test_a_contact_is_updated_and_a_new_address_revokes_old_links(api, make_deliverable) -> None:
    deliverable = make_deliverable(DeliverableState.DELIVERED)
    approver = deliverable.requests[-1].approvers[0]
    contact, generation = approver.contact, approver.link_generation

    language_only = api.patch(f"/api/v1/contacts/{contact.id}", json={"language": "ru"})
    assert language_only.status_code == 200, language_only.get_json()
    assert language_only.get_json()["language"] == "ru"
    contact = db.session.get(Contact, contact.id)
    assert contact.language == "ru" and contact.email.startswith("contact1@")
    assert db.session.get(Approver, approver.id).link_generation == generation

    moved = api.patch(f"/api/v1/contacts/{contact.id}",
                      json={"name": "Jane Moved", "email": "jane@new.example"})
    assert moved.get_json()["email"] == "jane@new.example"
    contact = db.session.get(Contact, contact.id)
    assert (contact.name, contact.email, contact.language) == (
        "Jane Moved", "jane@new.example", "ru")
    assert db.session.get(Approver, approver.id).link_generation == generation + 1
    updated = events("contact.updated")
    assert json.loads(updated[-1].detail)["previous_email"].startswith("contact1@")

    sibling = contact.client.contacts[1] if contact.client.contacts[0].id == contact.id \
        else contact.client.contacts[0]
    assert_problem(api.patch(f"/api/v1/contacts/{sibling.id}",
                             json={"email": "jane@new.example"}), 422,
                   "already has a contact with the email jane@new.example.")
    assert_problem(api.patch(f"/api/v1/contacts/{contact.id}", json={"name": " "}), 422,
                   "The contact's name is required.")
    assert db.session.get(Contact, sibling.id).email != "jane@new.example"
    assert db.session.get(Contact, contact.id).name == "Jane Moved"
    assert field_errors(api.patch(f"/api/v1/contacts/{contact.id}", json={})) == {
        "_schema": ["Send at least one field to change."]}


# --- projects --------------------------------------------------------------------------

def test_projects_are_created_listed_by_client_and_read(api, staff, colleague,
                                                        make_client) -> None:
    acme, globex = make_client("Acme"), make_client("Globex")
    mine = api.post("/api/v1/projects", json={"client_id": acme.id, "name": "Website"})
    assert mine.status_code == 201, mine.get_json()
    project = db.session.get(Project, mine.get_json()["id"])
    assert mine.headers["Location"] == f"/api/v1/projects/{project.id}"
    assert (project.client_id, project.name, project.owner_id) == (acme.id, "Website", staff.id)
    assert mine.get_json()["owner_name"] == "Sam Staff"
    theirs = api.post("/api/v1/projects", json={"client_id": acme.id, "name": "Brochure",
                                                "owner_id": colleague.id})
    assert db.session.get(Project, theirs.get_json()["id"]).owner_id == colleague.id
    elsewhere = api.post("/api/v1/projects", json={"client_id": globex.id, "name": "Website"})
    assert elsewhere.status_code == 201
    assert [e.subject_id for e in events("project.created")] == [
        project.id, theirs.get_json()["id"], elsewhere.get_json()["id"]]

    acme_only = api.get(f"/api/v1/projects?client_id={acme.id}").get_json()
    assert [p["name"] for p in acme_only["items"]] == ["Brochure", "Website"]
    everything = api.get("/api/v1/projects?limit=2").get_json()
    assert len(everything["items"]) == 2 and everything["next_cursor"]
    last = api.get(f"/api/v1/projects?limit=2&cursor={everything['next_cursor']}").get_json()
    assert [p["id"] for p in last["items"]] == [project.id]
    assert api.get("/api/v1/projects?client_id=999").get_json()["items"] == []
    assert "client_id" in assert_problem(api.get("/api/v1/projects?client_id=acme"),
                                         422)["errors"]["query"]
    assert api.get(f"/api/v1/projects/{project.id}").get_json() == mine.get_json()


def test_project_refusals_save_nothing(api, make_user, make_client, make_project) -> None:
    acme = make_client("Acme")
    existing = make_project(acme)
    finance = make_user(Role.FINANCE)
    unknown_client = field_errors(api.post("/api/v1/projects",
                                           json={"client_id": 999, "name": "Site"}))
    assert unknown_client == {"client_id": ["There is no client with this id."]}
    assert field_errors(api.post("/api/v1/projects", json={
        "client_id": acme.id, "name": "Site", "owner_id": 999})) == {
        "owner_id": ["Choose the account manager who owns the project."]}
    assert_problem(api.post("/api/v1/projects", json={
        "client_id": acme.id, "name": "Site", "owner_id": finance.id}), 422,
        "The project owner must be an active account manager (staff or admin).")
    assert_problem(api.post("/api/v1/projects", json={
        "client_id": acme.id, "name": existing.name.upper()}), 422,
        f"Acme already has a project called “{existing.name.upper()}”.")
    for body in ({"name": "Site"}, {"client_id": str(acme.id), "name": "Site"},
                 {"client_id": acme.id, "name": None}, {"client_id": 2**70, "name": "Site"}):
        assert_problem(api.post("/api/v1/projects", json=body), 422)
    assert count(Project) == 1 and events("project.created") == []


# --- the contract ----------------------------------------------------------------------

def test_every_operation_documents_its_problems(api) -> None:
    spec = api.client.get("/api/v1/openapi.json").get_json()
    ours = {path: item for path, item in spec["paths"].items()
            if path.startswith(("/api/v1/clients", "/api/v1/contacts", "/api/v1/projects"))}
    assert len(ours) == 6
    for path, item in ours.items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            assert {"401", "403"} <= set(responses), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            for status in ("401", "403", "404", "422"):
                if status in responses:
                    assert PROBLEM in responses[status]["content"], (method, path, status)
            if method in ("post", "patch"):  # a body that is not JSON
                assert "400" in responses, (method, path)
            if method == "post":
                names = [p.get("name") for p in operation.get("parameters", [])]
                assert "Idempotency-Key" in names, path
