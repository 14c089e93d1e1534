"""What waits in the database to go out: emails and webhook deliveries, pending or failed."""
from __future__ import annotations

from sqlalchemy import func, literal, select, union_all

from portal.extensions import db
from portal.models import OutboxMessage, OutboxStatus, WebhookDelivery

WATCHED = (OutboxStatus.PENDING, OutboxStatus.FAILED)


def pending_and_failed() -> dict[tuple[str, str], int]:
    """{(kind, status): count} for "email" and "webhook", every pair present (0 if none):
    one grouped query, answered from the status indexes."""
    grouped = [
        select(literal(kind).label("kind"), model.status, func.count())
        .where(model.status.in_(WATCHED)).group_by(model.status)
        for kind, model in (("email", OutboxMessage), ("webhook", WebhookDelivery))
    ]
    counts = {(kind, status.value): 0 for kind in ("email", "webhook") for status in WATCHED}
    for kind, status, count in db.session.execute(union_all(*grouped)):
        counts[(kind, OutboxStatus(status).value)] = count
    return counts
