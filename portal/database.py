"""The database connection's rules (SQLite pragmas, when transactions begin) and the
row-level helpers shared by the workflow, the outbox, webhooks and the sweep."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from portal.extensions import db
from portal.models import OutboxStatus

# Whether the transactions this context begins will only read. The web layer declares it
# for GET and HEAD (portal/views); everything else (other requests, jobs, the CLI) may
# write. A flag of the context, not of the statement: SQLite must know at BEGIN.
_reads_only: ContextVar[bool] = ContextVar("reads_only", default=False)
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class WriteWhileReading(RuntimeError):
    """Code that declared it only reads (a GET or HEAD request) tried to write."""


def declare_reads_only(only: bool) -> None:
    """From now on in this context, transactions only read (True) or may write (False)."""
    _reads_only.set(only)


@contextmanager
def writing() -> Iterator[None]:
    """A write of its own inside a request that declared it only reads (an API token's
    last use, noted on a GET): the declaration comes back afterwards."""
    before = _reads_only.get()
    _reads_only.set(False)
    try:
        yield
    finally:
        _reads_only.set(before)


def abandon_transaction(_exc: BaseException | None = None) -> None:
    """Roll back whatever this session holds. When the server dropped the connection under
    it (a restart, a failover), the ROLLBACK itself fails: then forget the connection
    instead, so an error page, or a page already drawn, still reaches the person."""
    try:
        db.session.rollback()
    except SQLAlchemyError:
        db.session().invalidate()  # the scoped proxy does not offer it


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not pysqlite, decide when transactions begin, so SAVEPOINTs
    # nest inside them (pysqlite would otherwise commit a savepoint on release).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # WAL: readers see the last commit and never wait for a writer (nor it for them).
    # It is a property of the file, kept once set; an in-memory database stays "memory".
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL, not the common NORMAL: a decision we acknowledged must survive a power cut.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # A transaction that may write takes the write lock up front (IMMEDIATE): SQLite cannot
    # upgrade a read whose snapshot another writer has since moved past (it fails at once
    # with SQLITE_BUSY_SNAPSHOT instead of waiting), and two deferred transactions that both
    # read then write would deadlock. A read-only one begins deferred and takes no lock.
    connection.exec_driver_sql("BEGIN" if _reads_only.get() else "BEGIN IMMEDIATE")


def _refuse_writes_while_reading(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    # On every backend, so a GET that writes fails in tests on PostgreSQL too, instead of
    # only under contention on SQLite.
    if _reads_only.get():
        head = statement.lstrip()[:8].upper()
        if head.startswith(WRITES) or " FOR UPDATE" in statement.upper():
            raise WriteWhileReading(
                "A GET or HEAD request must not write (its transaction began read-only); "
                f"make it a POST: {statement[:80]!r}")


def configure_engine(engine: Engine) -> None:
    """Attach our connection rules to this app's engine (never to every Engine)."""
    if not event.contains(engine, "before_cursor_execute", _refuse_writes_while_reading):
        event.listen(engine, "before_cursor_execute", _refuse_writes_while_reading)
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
        # OF the model's own table: a relationship it always loads with a LEFT JOIN (a
        # decision's on-behalf row) must not be locked, and PostgreSQL refuses to.
        select(model).where(model.id == ident)
        .with_for_update(skip_locked=skip_locked, of=model)
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
