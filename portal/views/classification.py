"""Staff classify a client's requested changes: within the original scope or a change
request (the agency's billing question), from the deliverable page."""
from __future__ import annotations

from flask import Blueprint, request
from flask_babel import gettext as _

from portal.models import Decision, RejectionScope, Version
from portal.views.common import act_on_deliverable, acting_user, get_or_404, staff_only
from portal.workflow.classification import classify_change_request

bp = Blueprint("classification", __name__)


@bp.post("/decisions/<int:decision_id>/classification")
@staff_only
def classify(decision_id: int):
    decision = get_or_404(Decision, decision_id)
    raw = request.form.get("scope", "")
    scope = RejectionScope(raw) if raw in {s.value for s in RejectionScope} else None
    deliverable_id = get_or_404(Version, decision.version_id).deliverable_id
    return act_on_deliverable(
        deliverable_id,
        lambda _d: classify_change_request(acting_user(), decision, scope,
                                           request.form.get("note", "")),
        _("Classified as %(scope)s.", scope=scope.label if scope else ""))
