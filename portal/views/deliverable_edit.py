"""Staff edit a deliverable's title, description and due date (on the staff blueprint)."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.wrappers import Response
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.errors import DomainError
from portal.extensions import db
from portal.models import Deliverable
from portal.views.common import acting_user, get_or_404, parse_date, staff_only
from portal.views.staff import bp
from portal.workflow.editing import MAX_DESCRIPTION, Details, edit_details, locked_while_with_client

TEMPLATE = "staff/deliverable_edit.html"
LABELS = {"title": _l("title"), "description": _l("description"), "due_date": _l("due date")}


def _page(deliverable: Deliverable, form: dict[str, str], error: DomainError | None = None,
          status: int = 200) -> tuple[str, int]:
    html = render_template(TEMPLATE, deliverable=deliverable, form=form, error=error,
                           locked=locked_while_with_client(deliverable),
                           max_description=MAX_DESCRIPTION)
    return html, status


@bp.route("/deliverables/<int:deliverable_id>/edit", methods=["GET", "POST"])
@staff_only
def edit_deliverable(deliverable_id: int) -> Response | tuple[str, int]:
    deliverable = get_or_404(Deliverable, deliverable_id)
    if request.method == "GET":
        return _page(deliverable, {
            "title": deliverable.title, "description": deliverable.description or "",
            "due_date": deliverable.due_date.isoformat() if deliverable.due_date else ""})
    form = request.form
    try:
        changes = edit_details(acting_user(), deliverable, Details(
            form.get("title", ""), form.get("description", ""),
            parse_date(form.get("due_date"), _("The due date"))))
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return _page(get_or_404(Deliverable, deliverable_id), form, exc, exc.status)
    if changes:
        flash(_("Saved: %(fields)s.", fields=", ".join(str(LABELS[f]) for f in changes)))
    else:
        flash(_("Nothing changed."))
    return redirect(url_for("staff.deliverable_page", deliverable_id=deliverable_id))
