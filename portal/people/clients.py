"""Clients, their contacts, and projects."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import func, select

from portal import audit
from portal.errors import InvalidInput
from portal.extensions import db
from portal.i18n import is_language
from portal.local_time import is_zone_name
from portal.models import Approver, Client, Contact, Project, Role, User
from portal.people.accounts import normalise_email
from portal.permissions import require_staff
from portal.validation import single_line


def chosen_language(code: str | None) -> str | None:
    """A language picked from a list: one of portal.i18n.LANGUAGES, or None for the
    default ("" or nothing chosen); anything else is refused."""
    code = (code or "").strip()
    if not code:
        return None
    if not is_language(code):
        raise InvalidInput(_("Choose a language from the list."))
    return code


def create_client(actor: User, name: str, contacts: list[tuple[str, str]],
                  language: str | None = None) -> Client:
    """A client card with its contacts, given as (name, email) pairs; `language` is every
    contact's unless they have their own (None: the portal's)."""
    require_staff(actor)
    name = single_line(name, _("The client's name"), 200)
    language = chosen_language(language)
    if db.session.scalar(select(Client.id).where(func.lower(Client.name) == name.lower())):
        raise InvalidInput(_("A client called “%(name)s” already exists.", name=name))
    client = Client(name=name, language=language)
    db.session.add(client)
    audit.record(actor, "client.created", client, name=name, language=language)
    for contact_name, email in contacts:
        add_contact(actor, client, contact_name, email)
    return client


def set_code_default(actor: User, client: Client, required: bool) -> None:
    """Whether new requests to this client ask for an emailed code before a decision."""
    require_staff(actor)
    if client.require_code_default != required:
        client.require_code_default = required
        audit.record(actor, "client.code_default", client, required=required)


def set_language(actor: User, client: Client, code: str | None) -> None:
    """The client's default language: what their contacts read unless staff chose one for
    a contact (None: the portal's)."""
    require_staff(actor)
    language = chosen_language(code)
    if client.language != language:
        audit.record(actor, "client.language", client, language=language,
                     previous=client.language)
        client.language = language


def set_timezone(actor: User, client: Client, name: str) -> None:
    """The client's time zone: the times on their pages and in their emails, and the hour
    their reminders go out."""
    require_staff(actor)
    name = (name or "").strip()
    if not is_zone_name(name):
        raise InvalidInput(_("Choose the client's time zone from the list (for example "
                             "Europe/Paris)."))
    if client.timezone != name:
        audit.record(actor, "client.timezone", client, timezone=name, previous=client.timezone)
        client.timezone = name


def add_contact(actor: User, client: Client, name: str, email: str,
                language: str | None = None) -> Contact:
    """A contact of the client; `language` is theirs (None: the client's)."""
    require_staff(actor)
    name = single_line(name, _("The contact's name"), 120)
    address = normalise_email(email) if email and email.strip() else None
    language = chosen_language(language)
    if address and any(c.email == address for c in client.contacts):
        raise InvalidInput(_("%(client)s already has a contact with the email %(email)s.",
                             client=client.name, email=address))
    contact = Contact(client=client, name=name, email=address, language=language)
    db.session.add(contact)
    audit.record(actor, "contact.added", contact, client_id=client.id, name=name, email=address,
                 language=language)
    return contact


def create_project(actor: User, client: Client, name: str, owner: User) -> Project:
    require_staff(actor)
    name = single_line(name, _("The project's name"), 200)
    if owner.role == Role.FINANCE or not owner.active:
        raise InvalidInput(_("The project owner must be an active account manager (staff or "
                             "admin)."))
    if any(p.name.lower() == name.lower() for p in client.projects):
        raise InvalidInput(_("%(client)s already has a project called “%(name)s”.",
                             client=client.name, name=name))
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


def update_contact(actor: User, contact: Contact, name: str, email: str, *,
                   language: str | None) -> None:
    """Rename, re-address or change the language of a contact (`language` None: the
    client's). A new address revokes every link sent to the old one."""
    require_staff(actor)
    name = single_line(name, _("The contact's name"), 120)
    address = normalise_email(email) if email and email.strip() else None
    language = chosen_language(language)
    if address and any(c.email == address and c.id != contact.id
                       for c in contact.client.contacts):
        raise InvalidInput(_("%(client)s already has a contact with the email %(email)s.",
                             client=contact.client.name, email=address))
    changed_email = address != contact.email
    detail = {"name": name, "email": address, "previous_email": contact.email,
              "language": language, "previous_language": contact.language}
    contact.name, contact.email, contact.language = name, address, language
    if changed_email:
        links = select(Approver).where(Approver.contact_id == contact.id)
        for approver in db.session.scalars(links):
            approver.link_generation += 1
    audit.record(actor, "contact.updated", contact, **detail)
