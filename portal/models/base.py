"""Column types shared by every model, and the clock they are stamped with."""
from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from flask_babel import gettext
from sqlalchemy import DateTime, Enum
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def today_utc() -> date:
    """The calendar date in UTC: what due dates and "overdue" are judged against."""
    return datetime.now(UTC).date()


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Choice(enum.StrEnum):
    """A string enum whose members carry a human label, in the language at hand."""

    @property
    def label(self) -> str:
        from portal.models.labels import LABELS

        words = LABELS.get((type(self).__name__, self.value))
        return str(words) if words is not None else gettext(self.value.replace("_", " "))


def choice_column(enum_cls: type[Choice], name: str) -> Enum:
    """Store the enum's values (not names) as VARCHAR with a CHECK constraint."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
    )
