"""Clients, contacts and projects, and new deliverables under a project."""
from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from portal import workflow
from portal.errors import DomainError, InvalidInput
from portal.extensions import db
from portal.i18n import LANGUAGES, portal_language
from portal.local_time import zone_names
from portal.models import (
    Client,
    Contact,
    Project,
    User,
)
from portal.people import clients as people
from portal.reports import history
from portal.views.common import acting_user, get_or_404, parse_date, staff_only

bp = Blueprint("clients", __name__)
CONTACT_ROWS = 3


def _failed(template: str, exc: DomainError, **context: object):
    db.session.rollback()
    return render_template(template, error=exc, form=request.form, **context), exc.status


def _language_choices() -> dict[str, object]:
    """The languages staff choose from, each named in itself, and the portal's default."""
    return {"language_names": LANGUAGES, "portal_language": LANGUAGES[portal_language()]}


@bp.get("/clients")
@login_required
def clients():
    rows = db.session.scalars(select(Client).order_by(Client.name)).all()
    return render_template("clients/clients.html", clients=rows)


@bp.route("/clients/new", methods=["GET", "POST"])
@staff_only
def new_client():
    if request.method == "GET":
        return render_template("clients/client_new.html", form={}, rows=CONTACT_ROWS,
                               **_language_choices())
    names = request.form.getlist("contact_name")
    emails = request.form.getlist("contact_email")
    contacts = [(n, e) for n, e in zip(names, emails, strict=False) if n.strip() or e.strip()]
    try:
        client = people.create_client(acting_user(), request.form.get("name", ""), contacts,
                                      request.form.get("language"))
        db.session.commit()
    except DomainError as exc:
        return _failed("clients/client_new.html", exc, rows=max(CONTACT_ROWS, len(names)),
                       **_language_choices())
    flash(_("Client %(name)s created.", name=client.name))
    return redirect(url_for("clients.client_page", client_id=client.id))


def _client_context(client: Client) -> dict[str, object]:
    return {"client": client, "managers": people.account_managers(), "zones": zone_names(),
            "decisions": history.client_decisions(client.id), **_language_choices()}


@bp.get("/clients/<int:client_id>")
@login_required
def client_page(client_id: int):
    client = get_or_404(Client, client_id)
    return render_template("clients/client.html", form={}, **_client_context(client))


def _act_on_client(client_id: int, action: Callable[[], object], done: str,
                   editing: int | None = None):
    """Run one directory change on the client page: commit and go back, or show why not
    (`editing`: the contact whose form shows what was typed)."""
    try:
        action()
        db.session.commit()
    except DomainError as exc:
        return _failed("clients/client.html", exc, editing=editing,
                       **_client_context(get_or_404(Client, client_id)))
    flash(done)
    return redirect(url_for("clients.client_page", client_id=client_id))


@bp.post("/clients/<int:client_id>/contacts")
@staff_only
def add_contact(client_id: int):
    client = get_or_404(Client, client_id)
    return _act_on_client(client_id, lambda: people.add_contact(
        acting_user(), client, request.form.get("contact_name", ""),
        request.form.get("contact_email", ""), request.form.get("language")),
        _("Contact added."))


@bp.post("/contacts/<int:contact_id>")
@staff_only
def update_contact(contact_id: int):
    contact = get_or_404(Contact, contact_id)
    return _act_on_client(contact.client_id, lambda: people.update_contact(
        acting_user(), contact, request.form.get("contact_name", ""),
        request.form.get("contact_email", ""), language=request.form.get("language")),
        _("Contact saved. Links sent to an old address no longer work."), editing=contact.id)


@bp.post("/clients/<int:client_id>/language")
@staff_only
def language(client_id: int):
    client = get_or_404(Client, client_id)
    return _act_on_client(client_id, lambda: people.set_language(
        acting_user(), client, request.form.get("language")),
        _("Default language saved for %(name)s.", name=client.name))


@bp.post("/clients/<int:client_id>/code-default")
@staff_only
def code_default(client_id: int):
    client = get_or_404(Client, client_id)
    required = request.form.get("require_code") == "1"
    return _act_on_client(client_id, lambda: people.set_code_default(
        acting_user(), client, required),
        _("New requests will ask for an emailed code before a decision.") if required
        else _("New requests will not ask for an emailed code."))


@bp.post("/clients/<int:client_id>/timezone")
@staff_only
def timezone(client_id: int):
    client = get_or_404(Client, client_id)
    name = request.form.get("timezone", "")
    return _act_on_client(client_id, lambda: people.set_timezone(acting_user(), client, name),
                          _("Times for %(client)s are now shown in %(zone)s.",
                            client=client.name, zone=name.strip()))


@bp.post("/clients/<int:client_id>/projects")
@staff_only
def add_project(client_id: int):
    client = get_or_404(Client, client_id)
    name = request.form.get("project_name", "")

    def create() -> None:
        owner = db.session.get(User, request.form.get("owner_id", type=int) or 0)
        if owner is None:
            raise InvalidInput(_("Choose the account manager who owns the project."))
        people.create_project(acting_user(), client, name, owner)
    return _act_on_client(client_id, create, _("Project %(name)s created.", name=name.strip()))


def _create_deliverable(project: Project | None, form_context: dict[str, object]):
    """Create the deliverable under `project` with the form's fields, or show why not."""
    try:
        if project is None:
            raise InvalidInput(_("Choose the project the deliverable belongs to."))
        deliverable = workflow.create_deliverable(
            acting_user(), project, request.form.get("title", ""),
            request.form.get("description", ""),
            parse_date(request.form.get("due_date"), _("The due date")),
        )
        db.session.commit()
    except DomainError as exc:
        return _failed("clients/deliverable_new.html", exc, **form_context)
    flash(_("Deliverable created. Upload its first version next."))
    return redirect(url_for("staff.deliverable_page", deliverable_id=deliverable.id))


@bp.route("/projects/<int:project_id>/deliverables/new", methods=["GET", "POST"])
@staff_only
def new_deliverable(project_id: int):
    project = get_or_404(Project, project_id)
    if request.method == "GET":
        return render_template("clients/deliverable_new.html", project=project, form={})
    return _create_deliverable(project, {"project": get_or_404(Project, project_id)})


def _choices(client_id: int | None) -> dict[str, object]:
    """The clients to choose from, and the chosen one's projects (one client at a time:
    agencies have thousands of projects)."""
    client = db.session.get(Client, client_id) if client_id else None
    return {
        "clients": db.session.execute(select(Client.id, Client.name).order_by(Client.name)).all(),
        "client": client,
        "projects": db.session.scalars(select(Project).where(Project.client_id == client.id)
                                       .order_by(Project.name)).all() if client else [],
    }


@bp.route("/deliverables/new", methods=["GET", "POST"])
@staff_only
def new_deliverable_anywhere():
    """From the dashboard: choose the client (a plain GET form), then its project and the
    details in one form."""
    if request.method == "GET":
        return render_template("clients/deliverable_new.html", form=request.args,
                               **_choices(request.args.get("client", type=int)))
    project = db.session.get(Project, request.form.get("project_id", type=int) or 0)
    client_id = project.client_id if project else request.form.get("client", type=int)
    return _create_deliverable(project, _choices(client_id))
