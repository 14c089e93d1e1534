"""What a client has decided over time (the client page's history)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.models import Approver, Contact, Decision, ReviewRequest, Version

LIMIT = 100


def client_decisions(client_id: int, limit: int = LIMIT) -> list[Decision]:
    """The newest decisions by this client's contacts, with what they decided on."""
    return list(db.session.scalars(
        select(Decision).join(Decision.approver).join(Approver.contact)
        .where(Contact.client_id == client_id).order_by(Decision.at.desc()).limit(limit)
        .options(selectinload(Decision.approver).selectinload(Approver.contact),
                 selectinload(Decision.approver).selectinload(Approver.request)
                 .selectinload(ReviewRequest.version).selectinload(Version.deliverable))))
