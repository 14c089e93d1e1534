"""Clients, contacts and projects, and new deliverables under a project."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import directory, outbox, workflow
from portal.errors import DomainError, InvalidInput
from portal.extensions import db
from portal.models import (
    Approver,
    Client,
    Contact,
    Decision,
    Project,
    ReviewRequest,
    User,
    Version,
)
from portal.views.access import acting_user, get_or_404, staff_only
from portal.views.staff import parse_date

bp = Blueprint("directory", __name__)
CONTACT_ROWS = 3


def _failed(template: str, exc: DomainError, **context: object):
    db.session.rollback()
    return render_template(template, error=exc, form=request.form, **context), exc.status


@bp.get("/clients")
@login_required
def clients():
    rows = db.session.scalars(select(Client).order_by(Client.name)).all()
    return render_template("directory/clients.html", clients=rows)


@bp.route("/clients/new", methods=["GET", "POST"])
@staff_only
def new_client():
    if request.method == "GET":
        return render_template("directory/client_new.html", form={}, rows=CONTACT_ROWS)
    names = request.form.getlist("contact_name")
    emails = request.form.getlist("contact_email")
    contacts = [(n, e) for n, e in zip(names, emails, strict=False) if n.strip() or e.strip()]
    try:
        client = directory.create_client(acting_user(), request.form.get("name", ""), contacts)
        outbox.commit()
    except DomainError as exc:
        return _failed("directory/client_new.html", exc, rows=max(CONTACT_ROWS, len(names)))
    flash(f"Client {client.name} created.")
    return redirect(url_for("directory.client_page", client_id=client.id))


def _client_context(client: Client) -> dict[str, object]:
    decisions = db.session.scalars(
        select(Decision).join(Decision.approver).join(Approver.contact)
        .where(Contact.client_id == client.id).order_by(Decision.at.desc()).limit(100)
        .options(selectinload(Decision.approver).selectinload(Approver.contact),
                 selectinload(Decision.approver).selectinload(Approver.request)
                 .selectinload(ReviewRequest.version).selectinload(Version.deliverable))
    ).all()
    return {"client": client, "managers": directory.account_managers(), "decisions": decisions}


@bp.get("/clients/<int:client_id>")
@login_required
def client_page(client_id: int):
    client = get_or_404(Client, client_id)
    return render_template("directory/client.html", form={}, **_client_context(client))


@bp.post("/clients/<int:client_id>/contacts")
@staff_only
def add_contact(client_id: int):
    client = get_or_404(Client, client_id)
    try:
        directory.add_contact(acting_user(), client, request.form.get("contact_name", ""),
                              request.form.get("contact_email", ""))
        outbox.commit()
    except DomainError as exc:
        return _failed("directory/client.html", exc,
                       **_client_context(get_or_404(Client, client_id)))
    flash("Contact added.")
    return redirect(url_for("directory.client_page", client_id=client_id))


@bp.post("/contacts/<int:contact_id>")
@staff_only
def update_contact(contact_id: int):
    contact = get_or_404(Contact, contact_id)
    client_id = contact.client_id
    try:
        directory.update_contact(acting_user(), contact, request.form.get("contact_name", ""),
                                 request.form.get("contact_email", ""))
        outbox.commit()
    except DomainError as exc:
        return _failed("directory/client.html", exc,
                       **_client_context(get_or_404(Client, client_id)))
    flash("Contact saved. Links sent to an old address no longer work.")
    return redirect(url_for("directory.client_page", client_id=client_id))


@bp.post("/clients/<int:client_id>/projects")
@staff_only
def add_project(client_id: int):
    client = get_or_404(Client, client_id)
    try:
        owner = db.session.get(User, request.form.get("owner_id", type=int) or 0)
        if owner is None:
            raise InvalidInput("Choose the account manager who owns the project.")
        project = directory.create_project(acting_user(), client,
                                           request.form.get("project_name", ""), owner)
        outbox.commit()
    except DomainError as exc:
        return _failed("directory/client.html", exc,
                       **_client_context(get_or_404(Client, client_id)))
    flash(f"Project {project.name} created.")
    return redirect(url_for("directory.client_page", client_id=client_id))


@bp.route("/projects/<int:project_id>/deliverables/new", methods=["GET", "POST"])
@staff_only
def new_deliverable(project_id: int):
    project = get_or_404(Project, project_id)
    if request.method == "GET":
        return render_template("directory/deliverable_new.html", project=project, form={})
    try:
        deliverable = workflow.create_deliverable(
            acting_user(), project, request.form.get("title", ""),
            request.form.get("description", ""),
            parse_date(request.form.get("due_date"), "The due date"),
        )
        outbox.commit()
    except DomainError as exc:
        return _failed("directory/deliverable_new.html", exc,
                       project=get_or_404(Project, project_id))
    flash("Deliverable created. Upload its first version next.")
    return redirect(url_for("staff.deliverable_page", deliverable_id=deliverable.id))
