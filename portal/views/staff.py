"""The staff side: dashboard, the full list, and the deliverable page with its lifecycle
actions (upload, submit, internal review, deliver)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from portal import workflow
from portal.errors import InvalidInput
from portal.extensions import db
from portal.models import (
    Client,
    Contact,
    Deliverable,
    DeliverableState,
    Policy,
    Project,
    User,
    Version,
    utcnow,
)
from portal.people.clients import account_managers
from portal.reports import board
from portal.reports.conditions import open_counts
from portal.views.common import (
    act_on_deliverable,
    acting_user,
    get_or_404,
    parse_date,
    render_deliverable,
    send_stored,
    staff_only,
)
from portal.views.htmx import is_htmx, render
from portal.workflow import observers, seen

bp = Blueprint("staff", __name__)


@bp.get("/")
@login_required
def dashboard():
    if not current_user.can_change_work:  # finance lives on the approved-work list
        return redirect(url_for("finance.approved"))
    # Mine (what I own or review) unless everyone's is asked for.
    everyone = request.args.get("scope") == "everyone"
    user = acting_user()
    sections = board.attention(user, everyone=everyone)
    return render("staff/dashboard.html", sections=sections, days_waiting=board.days_waiting,
                  open_conditions=open_counts(sections["open_conditions"]), everyone=everyone,
                  unseen=board.unseen_on(user, *sections.values()))


def _list_filters() -> board.Filters:
    args = request.args
    state = args.get("state", "")
    return board.Filters(
        client=args.get("client", type=int), project=args.get("project", type=int),
        state=DeliverableState(state) if state in {s.value for s in DeliverableState} else None,
        owner=args.get("owner", type=int), overdue=args.get("overdue") == "1",
        before=args.get("before", type=int),
    )


@bp.get("/deliverables")
@login_required
def deliverables():
    filters = _list_filters()
    rows, next_cursor = board.deliverable_page(filters)
    # Only known filters go back into url_for (other keys could be its own arguments).
    query_args = {k: v for k, v in request.args.items()
                  if k in ("client", "project", "state", "owner", "overdue") and v}
    # The filter form's choices are only needed for the whole page, not for htmx rows.
    choices = {} if is_htmx() else {
        "clients": db.session.execute(select(Client.id, Client.name).order_by(Client.name)).all(),
        # Projects are listed for the chosen client only: agencies have thousands.
        "projects": db.session.execute(
            select(Project.id, Project.name).where(Project.client_id == filters.client)
            .order_by(Project.name)).all() if filters.client else [],
        "owners": account_managers(), "states": list(DeliverableState),
    }
    return render("staff/deliverables.html", block="rows", deliverables=rows,
                  next_cursor=next_cursor, filters=filters, query_args=query_args,
                  days_waiting=board.days_waiting,
                  unseen=board.unseen_on(acting_user(), rows), **choices)


@bp.get("/deliverables/<int:deliverable_id>")
@login_required
def deliverable_page(deliverable_id: int):
    return render_deliverable(deliverable_id, part=request.args.get("part"))


@bp.post("/deliverables/<int:deliverable_id>/seen")
@login_required
def mark_seen(deliverable_id: int):
    """The page's beacon (htmx, on load) or its "Mark as read" button (without JS):
    the client comments up to the newest one the page showed are seen."""
    deliverable = get_or_404(Deliverable, deliverable_id)
    up_to = request.form.get("up_to", type=int)
    if up_to is None:
        raise InvalidInput(_("Reload the page and try again: it did not say which comments "
                             "you saw."))
    seen.mark_seen(acting_user(), deliverable.id, utcnow(), up_to)
    db.session.commit()
    if is_htmx():  # the notice stays in view; its button becomes "Marked as read."
        return render("staff/_seen.html", block="marked", marked=True)
    flash(_("Marked as read."))
    return redirect(url_for("staff.deliverable_page", deliverable_id=deliverable.id))


@bp.post("/deliverables/<int:deliverable_id>/versions")
@staff_only
def upload(deliverable_id: int):
    upload_file = request.files.get("file")

    def action(deliverable: Deliverable) -> None:
        if upload_file is None or not upload_file.filename:
            raise InvalidInput(_("Choose a file to upload."))
        workflow.upload_version(acting_user(), deliverable, upload_file.stream,
                                upload_file.filename, request.form.get("what_changed", ""))
    return act_on_deliverable(deliverable_id, action, _("New version uploaded."))


@bp.post("/deliverables/<int:deliverable_id>/submit")
@staff_only
def submit(deliverable_id: int):
    reviewer_id = request.form.get("reviewer_id", type=int)

    def action(deliverable: Deliverable) -> None:
        reviewer = get_or_404(User, reviewer_id) if reviewer_id else None
        workflow.submit_for_review(acting_user(), deliverable, reviewer)
    return act_on_deliverable(deliverable_id, action, _("Submitted for internal review."))


@bp.post("/deliverables/<int:deliverable_id>/review")
@staff_only
def review(deliverable_id: int):
    approve = request.form.get("outcome") == "approve"

    def action(deliverable: Deliverable) -> None:
        workflow.review_internally(acting_user(), deliverable, approve=approve,
                                   note=request.form.get("note", ""))
    return act_on_deliverable(deliverable_id, action,
                _("Marked as reviewed.") if approve else _("Sent back with your note."))


def _reminder_policy(form: Any) -> workflow.ReminderPolicy | None:
    fields = ("reminder_first", "reminder_every", "reminder_max")
    if not any(form.get(f) for f in fields):
        return None
    try:
        return workflow.ReminderPolicy(*(int(form.get(f, "")) for f in fields))
    except ValueError as exc:
        raise InvalidInput(_("Reminder settings must be whole numbers.")) from exc


def _approval_policy(form: Any) -> tuple[Policy, int | None]:
    """The chosen policy, and K for "at least" (the number field counts only then)."""
    raw = form.get("policy", "parallel")
    if raw not in {p.value for p in Policy}:
        raise InvalidInput(_("Choose how the approvers decide."))
    policy = Policy(raw)
    if policy != Policy.AT_LEAST:
        return policy, None
    needed = (form.get("required_approvals") or "").strip()
    if not needed.isdigit():
        raise InvalidInput(_("Say how many approvals are needed, as a whole number."))
    return policy, int(needed)


@bp.post("/deliverables/<int:deliverable_id>/deliver")
@staff_only
def deliver(deliverable_id: int):
    def action(deliverable: Deliverable) -> None:
        chosen = []
        for raw in request.form.getlist("contact_id"):
            contact = db.session.get(Contact, int(raw)) if raw.isdigit() else None
            if contact is None:
                raise InvalidInput(_("One of the chosen contacts no longer exists."))
            order = request.form.get(f"order_{contact.id}", type=int) or 0
            chosen.append((order, contact.name, contact))
        contacts = [c for _order, _name, c in sorted(chosen, key=lambda t: (t[0], t[1]))]
        policy, required = _approval_policy(request.form)
        due = parse_date(request.form.get("due_date"), _("The due date"))
        made = workflow.deliver(acting_user(), deliverable, contacts, policy, due,
                                reminder_policy=_reminder_policy(request.form),
                                require_code=request.form.get("require_code") == "1",
                                required_approvals=required,
                                changes_end_request=request.form.get("changes_end_request") == "1")
        observers.add_observers(made, observers.contacts_by_id(request.form.getlist("observer_id")),
                                request.form.get("observers_may_comment") == "1", acting_user(),
                                utcnow())
    return act_on_deliverable(deliverable_id, action,
                              _("Delivered. The approvers have been emailed."))


@bp.get("/versions/<int:version_id>/file")
@login_required
def download(version_id: int):
    version = get_or_404(Version, version_id)
    return send_stored(version.storage_key, version.media_type, version.file_name)
