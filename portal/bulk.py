"""Many rows in one statement, for the set-based paths (the reminder sweep, audit.record_many).

On PostgreSQL the rows travel as one array per column and `unnest` turns them back into
rows: one statement with a handful of parameters, however many rows, which the server
plans once (a VALUES list of thousands of rows costs more to bind and plan than to
write). SQLite takes an executemany. Column defaults apply as in any insert.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, column, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db


def _postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _unnest(table: Table, rows: list[dict[str, Any]], names: list[str]) -> Any:
    """The rows as a derived table `rows(name, …)` typed as the table's columns."""
    arrays = [bindparam(f"bulk_{name}", [row[name] for row in rows],
                        type_=postgresql.ARRAY(table.c[name].type)) for name in names]
    return func.unnest(*arrays).table_valued(
        *(column(name, table.c[name].type) for name in names)).render_derived("rows")


def insert_new(table: Table, rows: list[dict[str, Any]], *, unique: list[str],
               returning: Any) -> list[Any]:
    """Insert the rows whose `unique` key is free, in one statement; `returning` of those
    inserted (rows whose key is taken, by a racing transaction too, are left alone)."""
    if not rows:
        return []
    names = list(rows[0])
    if _postgres():
        source = _unnest(table, rows, names)
        statement = (postgresql.insert(table)
                     .from_select(names, select(*(source.c[name] for name in names)))
                     .on_conflict_do_nothing(index_elements=unique).returning(returning))
        return list(db.session.execute(statement).scalars())
    statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=unique)
    return list(db.session.execute(statement.returning(returning), rows).scalars())


def insert_all(table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert every row, in one statement."""
    if not rows:
        return
    names = list(rows[0])
    if _postgres():
        source = _unnest(table, rows, names)
        db.session.execute(insert(table).from_select(
            names, select(*(source.c[name] for name in names))))
    else:
        db.session.execute(insert(table), rows)


def update_by_id(table: Table, rows: list[dict[str, Any]]) -> None:
    """Set each row's other fields on the row with its "id", in one statement."""
    if not rows:
        return
    names = [name for name in rows[0] if name != "id"]
    if _postgres():
        source = _unnest(table, rows, ["id", *names])
        db.session.execute(update(table).where(table.c.id == source.c.id)
                           .values({name: source.c[name] for name in names}))
    else:
        db.session.execute(
            update(table).where(table.c.id == bindparam("row_id"))
            .values({name: bindparam(f"row_{name}") for name in names}),
            [{f"row_{key}": value for key, value in row.items()} for row in rows])

