"""Staff confirm or decline a client's hand-over on the deliverable page, and choose per
client whether contacts may hand over directly (on the staff blueprint)."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from portal.errors import DomainError
from portal.extensions import db
from portal.models import Client, Delegation, Deliverable, ReviewRequest, utcnow
from portal.views.common import acting_user, get_or_404, render_deliverable, staff_only
from portal.views.htmx import is_htmx
from portal.views.staff import bp
from portal.workflow import delegation as handover


def _deliverable_id(delegation: Delegation) -> int:
    return db.session.get(ReviewRequest, delegation.request_id).version.deliverable_id


def _decide(delegation_id: int, confirming: bool) -> Response:
    delegation = get_or_404(Delegation, delegation_id)
    deliverable_id = _deliverable_id(delegation)
    name, who = delegation.name, delegation.from_approver.contact.name
    try:
        if confirming:
            handover.confirm(delegation, acting_user(), utcnow())
        else:
            handover.decline(delegation, acting_user(), utcnow())
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return render_deliverable(deliverable_id, error=exc, form=request.form)
    flash(_("%(name)s now decides in place of %(who)s; they have their link by email.",
            name=name, who=who) if confirming else
          _("Hand-over declined: %(who)s still decides, and has been told.", who=who))
    if is_htmx():
        return render_deliverable(deliverable_id)
    return redirect(url_for("staff.deliverable_page", deliverable_id=deliverable_id)
                    + "#handovers")


@bp.post("/delegations/<int:delegation_id>/confirm")
@staff_only
def confirm_handover(delegation_id: int) -> Response:
    return _decide(delegation_id, confirming=True)


@bp.post("/delegations/<int:delegation_id>/decline")
@staff_only
def decline_handover(delegation_id: int) -> Response:
    return _decide(delegation_id, confirming=False)


@bp.post("/clients/<int:client_id>/direct-handover")
@staff_only
def direct_handover(client_id: int) -> Response:
    client = get_or_404(Client, client_id)
    allowed = request.form.get("direct_handover") == "1"
    handover.set_direct_handover(acting_user(), client, allowed)
    db.session.commit()
    flash(_("%(client)s's contacts may now hand a review over to a colleague directly.",
            client=client.name) if allowed else
          _("Hand-overs by %(client)s's contacts now wait for the team to confirm them.",
            client=client.name))
    return redirect(url_for("clients.client_page", client_id=client.id) + "#handover-setting")


@bp.app_template_global()
def handovers_of(deliverable: Deliverable) -> list[Delegation]:
    """The deliverable page's hand-overs, newest first."""
    return handover.of_deliverable(deliverable.id)


@bp.app_template_global()
def handovers_of_request(review_request: ReviewRequest) -> list[Delegation]:
    """The confirmed hand-overs of one request (the certificate's lines)."""
    return [h for h in handover.of_request(review_request.id) if h.to_approver_id is not None]
