"""/api/v1: Clients, their contacts, and projects.

The same domain functions as the clients pages (portal/views/clients.py, and the hand-over
setting in portal/views/staff_delegation.py), so the same rules, audit events and words."""
from __future__ import annotations

from functools import partial
from typing import Any

from flask import url_for
from flask_babel import gettext as _
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.api.auth import acting_user
from portal.api.clients_schemas import (
    ClientCreateSchema,
    ClientSchema,
    ClientUpdateSchema,
    ContactCreateSchema,
    ContactSchema,
    ContactUpdateSchema,
    ProjectCreateSchema,
    ProjectListArgs,
    ProjectSchema,
)
from portal.api.common import ID, LOCATION, field_error
from portal.api.common import problems as documented
from portal.api.pagination import PageArgs, page_of, paginate
from portal.api.writes import creates, writes
from portal.extensions import db
from portal.models import Client, Contact, Project, User
from portal.people import clients as people
from portal.workflow import delegation

blp = Blueprint("api_clients", __name__, description="Clients, their contacts, and projects")

CLIENT_ID = f"<{ID}:client_id>"
CONTACT_ID = f"<{ID}:contact_id>"
PROJECT_ID = f"<{ID}:project_id>"


problems = partial(documented, blp)  # the refusals an operation can answer


def _created(row: Client | Contact | Project, endpoint: str, id_name: str) -> tuple:
    """201 with the new row and where to read it."""
    db.session.flush()  # its id, for the answer and the Location
    return row, 201, {"Location": url_for(endpoint, **{id_name: row.id})}


# --- clients -------------------------------------------------------------------------

@blp.get("/clients")
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(ClientSchema))
@problems(401, 403, 422)
def list_clients(args: dict[str, Any]) -> dict[str, Any]:
    """List clients, newest first"""
    return paginate(select(Client).options(selectinload(Client.contacts)), Client.id, args)


@blp.post("/clients")
@creates
@blp.arguments(ClientCreateSchema)
@blp.response(201, ClientSchema, headers=LOCATION)
@problems(400, 401, 403, 422)
def create_client(data: dict[str, Any]) -> tuple:
    """Create a client, with its first contacts"""
    contacts = [(c["name"], c["email"] or "") for c in data["contacts"]]
    client = people.create_client(acting_user(), data["name"], contacts, data.get("language"))
    return _created(client, "api_clients.get_client", "client_id")


@blp.get(f"/clients/{CLIENT_ID}")
@blp.response(200, ClientSchema)
@problems(401, 403, 404)
def get_client(client_id: int) -> Client:
    """Get a client"""
    return db.get_or_404(Client, client_id)


@blp.patch(f"/clients/{CLIENT_ID}")
@writes
@blp.arguments(ClientUpdateSchema)
@blp.response(200, ClientSchema)
@problems(400, 401, 403, 404, 422)
def update_client(data: dict[str, Any], client_id: int) -> Client:
    """Change a client's settings"""
    client, actor = db.get_or_404(Client, client_id), acting_user()
    if "language" in data:
        people.set_language(actor, client, data["language"])
    if "timezone" in data:
        people.set_timezone(actor, client, data["timezone"])
    if "require_code_default" in data:
        people.set_code_default(actor, client, data["require_code_default"])
    if "direct_handover" in data:
        delegation.set_direct_handover(actor, client, data["direct_handover"])
    return client


# --- contacts ------------------------------------------------------------------------

@blp.get(f"/clients/{CLIENT_ID}/contacts")
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(ContactSchema))
@problems(401, 403, 404, 422)
def list_contacts(args: dict[str, Any], client_id: int) -> dict[str, Any]:
    """List a client's contacts, newest first"""
    db.get_or_404(Client, client_id)
    return paginate(select(Contact).where(Contact.client_id == client_id), Contact.id, args)


@blp.post(f"/clients/{CLIENT_ID}/contacts")
@creates
@blp.arguments(ContactCreateSchema)
@blp.response(201, ContactSchema, headers=LOCATION)
@problems(400, 401, 403, 404, 422)
def create_contact(data: dict[str, Any], client_id: int) -> tuple:
    """Add a contact to a client"""
    client = db.get_or_404(Client, client_id)
    contact = people.add_contact(acting_user(), client, data["name"], data["email"] or "",
                                 data.get("language"))
    return _created(contact, "api_clients.get_contact", "contact_id")


@blp.get(f"/contacts/{CONTACT_ID}")
@blp.response(200, ContactSchema)
@problems(401, 403, 404)
def get_contact(contact_id: int) -> Contact:
    """Get a contact"""
    return db.get_or_404(Contact, contact_id)


@blp.patch(f"/contacts/{CONTACT_ID}")
@writes
@blp.arguments(ContactUpdateSchema)
@blp.response(200, ContactSchema)
@problems(400, 401, 403, 404, 422)
def update_contact(data: dict[str, Any], contact_id: int) -> Contact:
    """Rename, re-address or change the language of a contact"""
    contact = db.get_or_404(Contact, contact_id)
    people.update_contact(acting_user(), contact, data.get("name", contact.name),
                          data.get("email", contact.email) or "",
                          language=data.get("language", contact.language))
    return contact


# --- projects ------------------------------------------------------------------------

@blp.get("/projects")
@blp.arguments(ProjectListArgs, location="query")
@blp.response(200, page_of(ProjectSchema))
@problems(401, 403, 422)
def list_projects(args: dict[str, Any]) -> dict[str, Any]:
    """List projects, newest first"""
    query = select(Project).options(selectinload(Project.owner))
    if "client_id" in args:
        query = query.where(Project.client_id == args["client_id"])
    return paginate(query, Project.id, args)


@blp.post("/projects")
@creates
@blp.arguments(ProjectCreateSchema)
@blp.response(201, ProjectSchema, headers=LOCATION)
@problems(400, 401, 403, 422)
def create_project(data: dict[str, Any]) -> tuple:
    """Create a project under a client"""
    client = db.session.get(Client, data["client_id"])
    if client is None:
        raise field_error("client_id", _("There is no client with this id."))
    owner = acting_user() if "owner_id" not in data else db.session.get(User, data["owner_id"])
    if owner is None:
        raise field_error("owner_id", _("Choose the account manager who owns the project."))
    project = people.create_project(acting_user(), client, data["name"], owner)
    return _created(project, "api_clients.get_project", "project_id")


@blp.get(f"/projects/{PROJECT_ID}")
@blp.response(200, ProjectSchema)
@problems(401, 403, 404)
def get_project(project_id: int) -> Project:
    """Get a project"""
    return db.get_or_404(Project, project_id)
