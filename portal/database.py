"""The database connection's rules (SQLite pragmas, when transactions begin) and the
row-level helpers shared by the workflow, the outbox, webhooks and the sweep."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from portal.extensions import db
from portal.models import OutboxStatus


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide when transactions begin, so SAVEPOINTs
    # nest inside them (pysqlite would otherwise commit a savepoint on release).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front: two deferred transactions that both read
    # and then write would deadlock, and SQLite answers that with "database is locked".
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def configure_engine(engine: Engine) -> None:
    """Attach our connection rules to this app's engine (never to every Engine)."""
    if engine.dialect.name == "sqlite" and not event.contains(engine, "connect",
                                                              _sqlite_connect):
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)


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


def due_pending_ids(model: Any, now: datetime, limit: int, *where: Any) -> list[int]:
    """Ids of pending outbox-like rows (emails, webhook deliveries) due by `now`."""
    return list(db.session.scalars(
        select(model.id).where(model.status == OutboxStatus.PENDING,
                               model.next_attempt_at <= now, *where)
        .order_by(model.id).limit(limit)))
