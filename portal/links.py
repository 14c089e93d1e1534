"""Links that go into client emails."""
from __future__ import annotations

from flask import current_app

from portal.models import Approver


def review_link(approver: Approver) -> str:
    """The link an approver opens to review their request.

    A placeholder until signed, expiring magic links exist: it carries only the
    approver's opaque public id.
    """
    return f"{current_app.config['PUBLIC_BASE_URL']}/review/{approver.public_id}"
