"""Staff keep contacts informed of a request (observers, CC) from the deliverable page:
add one while the request is out with the client, revoke or resend their link. The
delivery form's "Also keep informed" contacts go through the same domain function
(views/staff.py: workflow.observers.add_observers)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request
from flask_babel import gettext as _

from portal.errors import InvalidInput
from portal.extensions import db
from portal.models import Contact, Observer, ReviewRequest, User, utcnow
from portal.views.common import act_on_deliverable, acting_user, get_or_404, staff_only
from portal.views.review_requests import bp
from portal.workflow import observers


@bp.post("/requests/<int:request_id>/observers")
@staff_only
def add_observer(request_id: int):
    review_request = get_or_404(ReviewRequest, request_id)
    raw = request.form.get("contact_id", "")
    contact = db.session.get(Contact, int(raw)) if raw.isdigit() else None

    def act(_deliverable: object) -> None:
        if contact is None:
            raise InvalidInput(_("Choose the contact to keep informed."))
        observers.add_observer(review_request, contact, request.form.get("may_comment") == "1",
                               acting_user(), utcnow())
    return act_on_deliverable(review_request.version.deliverable_id, act,
                              _("%(name)s is kept informed; a link is on its way.",
                                name=contact.name if contact else ""))


def _on_observer(observer_id: int, act: Callable[[User, Observer, Any], None],
                 done: str) -> Any:
    observer = get_or_404(Observer, observer_id)
    return act_on_deliverable(observer.request.version.deliverable_id,
                              lambda _d: act(acting_user(), observer, utcnow()), done)


@bp.post("/observers/<int:observer_id>/revoke")
@staff_only
def revoke_observer(observer_id: int):
    name = get_or_404(Observer, observer_id).contact.name
    return _on_observer(observer_id, observers.revoke_observer,
                        _("%(name)s's link no longer works.", name=name))


@bp.post("/observers/<int:observer_id>/resend")
@staff_only
def resend_observer(observer_id: int):
    name = get_or_404(Observer, observer_id).contact.name
    return _on_observer(observer_id, observers.resend_observer_link,
                        _("A new link is on its way to %(name)s; older links no longer work.",
                          name=name))
