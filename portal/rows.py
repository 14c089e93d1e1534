"""Row-level helpers shared by the workflow, the outbox, webhooks and the sweep."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from portal.extensions import db
from portal.models import OutboxStatus


def lock_row(model: Any, ident: int, *, skip_locked: bool = False) -> Any:
    """The row, freshly read and locked until the transaction ends (SELECT … FOR UPDATE).

    With `skip_locked`, None when another transaction holds it (PostgreSQL; SQLite has
    only the file lock, which BEGIN IMMEDIATE takes).
    """
    return db.session.execute(
        select(model).where(model.id == ident).with_for_update(skip_locked=skip_locked)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def lock_free_rows(model: Any, ids: list[int], *loads: Any) -> list[Any]:
    """Those of these rows nobody else is working on, locked, with `loads` applied."""
    if not ids:
        return []
    return list(db.session.scalars(
        select(model).where(model.id.in_(ids)).order_by(model.id)
        .with_for_update(skip_locked=True).execution_options(populate_existing=True)
        .options(*loads)
    ))


def due_pending_ids(model: Any, now: datetime, limit: int) -> list[int]:
    """Ids of pending outbox-like rows (emails, webhook deliveries) due by `now`."""
    ids = list(db.session.scalars(
        select(model.id).where(model.status == OutboxStatus.PENDING,
                               model.next_attempt_at <= now)
        .order_by(model.id).limit(limit)))
    db.session.commit()  # end the read before handing ids to the queue
    return ids
