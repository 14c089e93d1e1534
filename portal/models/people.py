"""Staff accounts and the client directory."""
from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Choice, UTCDateTime, choice_column, utcnow

if TYPE_CHECKING:
    from portal.models.work import Deliverable


class Role(Choice):
    ADMIN = "admin"
    STAFF = "staff"
    FINANCE = "finance"


def zone_named(name: str | None) -> ZoneInfo:
    """A time zone by its IANA name; UTC when the name is empty or unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def new_session_token() -> str:
    return secrets.token_urlsafe(24)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(choice_column(Role, "role"), default=Role.STAFF)
    # The language of the staff pages for this person (None: the browser's, else the portal's).
    language: Mapped[str | None] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(default=True)
    # Flask-Login stores this, not the row id, so changing it ends every session.
    session_token: Mapped[str] = mapped_column(
        String(64), unique=True, default=new_session_token
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def get_id(self) -> str:
        return self.session_token

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.active

    @property
    def can_change_work(self) -> bool:
        return self.role in (Role.ADMIN, Role.STAFF)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class Client(db.Model):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Every contact's language unless they have their own (None: the portal's).
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # New requests ask for a one-time code emailed to the approver before a decision.
    require_code_default: Mapped[bool] = mapped_column(default=False, server_default=false())
    # A contact may hand a request over to a colleague without staff confirming it.
    direct_handover: Mapped[bool] = mapped_column(default=False, server_default=false())

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="client", order_by="Contact.name"
    )
    projects: Mapped[list[Project]] = relationship(
        back_populates="client", order_by="Project.name"
    )

    @property
    def zone(self) -> ZoneInfo:
        """Where the client's reminders are timed and their times shown."""
        return zone_named(self.timezone)


class Contact(db.Model):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("client_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    # Chosen by staff (None: the client's language).
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(back_populates="contacts")


class Project(db.Model):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("client_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The account manager new deliverables are given to; each deliverable keeps its own.
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship(back_populates="projects")
    owner: Mapped[User] = relationship()
    deliverables: Mapped[list[Deliverable]] = relationship(
        back_populates="project", order_by="Deliverable.id"
    )
