"""Clients, their contacts, and projects."""
from __future__ import annotations

from sqlalchemy import func, select

from portal import audit
from portal.errors import InvalidInput
from portal.extensions import db
from portal.local_time import is_zone_name
from portal.models import Approver, Client, Contact, Project, Role, User
from portal.people.accounts import normalise_email
from portal.permissions import require_staff
from portal.validation import single_line


def create_client(actor: User, name: str, contacts: list[tuple[str, str]]) -> Client:
    """A client card with its contacts, given as (name, email) pairs."""
    require_staff(actor)
    name = single_line(name, "The client's name", 200)
    if db.session.scalar(select(Client.id).where(func.lower(Client.name) == name.lower())):
        raise InvalidInput(f"A client called “{name}” already exists.")
    client = Client(name=name)
    db.session.add(client)
    audit.record(actor, "client.created", client, name=name)
    for contact_name, email in contacts:
        add_contact(actor, client, contact_name, email)
    return client


def set_code_default(actor: User, client: Client, required: bool) -> None:
    """Whether new requests to this client ask for an emailed code before a decision."""
    require_staff(actor)
    if client.require_code_default != required:
        client.require_code_default = required
        audit.record(actor, "client.code_default", client, required=required)


def set_timezone(actor: User, client: Client, name: str) -> None:
    """The client's time zone: the times on their pages and in their emails, and the hour
    their reminders go out."""
    require_staff(actor)
    name = (name or "").strip()
    if not is_zone_name(name):
        raise InvalidInput("Choose the client's time zone from the list (for example "
                           "Europe/Paris).")
    if client.timezone != name:
        audit.record(actor, "client.timezone", client, timezone=name, previous=client.timezone)
        client.timezone = name


def add_contact(actor: User, client: Client, name: str, email: str) -> Contact:
    require_staff(actor)
    name = single_line(name, "The contact's name", 120)
    address = normalise_email(email) if email and email.strip() else None
    if address and any(c.email == address for c in client.contacts):
        raise InvalidInput(f"{client.name} already has a contact with the email {address}.")
    contact = Contact(client=client, name=name, email=address)
    db.session.add(contact)
    audit.record(actor, "contact.added", contact, client_id=client.id, name=name, email=address)
    return contact


def create_project(actor: User, client: Client, name: str, owner: User) -> Project:
    require_staff(actor)
    name = single_line(name, "The project's name", 200)
    if owner.role == Role.FINANCE or not owner.active:
        raise InvalidInput("The project owner must be an active account manager (staff or admin).")
    if any(p.name.lower() == name.lower() for p in client.projects):
        raise InvalidInput(f"{client.name} already has a project called “{name}”.")
    project = Project(client=client, name=name, owner=owner)
    db.session.add(project)
    audit.record(actor, "project.created", project, client_id=client.id, name=name,
                 owner=owner.email)
    return project


def account_managers() -> list[User]:
    return list(db.session.scalars(
        select(User).where(User.active, User.role.in_([Role.STAFF, Role.ADMIN]))
        .order_by(User.name)
    ))


def update_contact(actor: User, contact: Contact, name: str, email: str) -> None:
    """Rename or re-address a contact. A new address revokes every link sent to the old one."""
    require_staff(actor)
    name = single_line(name, "The contact's name", 120)
    address = normalise_email(email) if email and email.strip() else None
    if address and any(c.email == address and c.id != contact.id
                       for c in contact.client.contacts):
        raise InvalidInput(f"{contact.client.name} already has a contact with the email "
                           f"{address}.")
    changed_email = address != contact.email
    detail = {"name": name, "email": address, "previous_email": contact.email}
    contact.name, contact.email = name, address
    if changed_email:
        links = select(Approver).where(Approver.contact_id == contact.id)
        for approver in db.session.scalars(links):
            approver.link_generation += 1
    audit.record(actor, "contact.updated", contact, **detail)
