"""The agency's identity: the name, logo and colour clients see on pages, emails and
certificates. One row (id 1); until an admin saves it, the defaults below stand."""
from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from sqlalchemy import CheckConstraint, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column

from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow

DEFAULT_NAME = "Signoff"
DEFAULT_ACCENT = "#2a5bd7"  # static/css/app.css's --accent
LOGO_TYPES = ("image/png", "image/svg+xml")


class AgencyProfile(db.Model):
    __tablename__ = "agency_profile"
    __table_args__ = (
        CheckConstraint("id = 1", name="ck_agency_profile_single_row"),
        CheckConstraint("logo_type IN ('image/png', 'image/svg+xml') OR logo_type IS NULL",
                        name="ck_agency_profile_logo_type"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    name: Mapped[str] = mapped_column(String(120), default=DEFAULT_NAME)
    # The From name on emails; empty: the agency's name.
    sender_name: Mapped[str] = mapped_column(String(120), default="", server_default="")
    accent: Mapped[str] = mapped_column(String(7), default=DEFAULT_ACCENT)
    # Loaded only by the logo route and the certificate, not by every page.
    logo: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    logo_type: Mapped[str | None] = mapped_column(String(32))
    logo_sha256: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def from_name(self) -> str:
        return self.sender_name or self.name

    @property
    def has_logo(self) -> bool:
        return self.logo_type is not None

    @property
    def version(self) -> str:
        """Changes whenever anything shown changes: the stylesheet's and logo's cache key."""
        stamp = f"{self.name}|{self.accent}|{self.logo_sha256}|{self.updated_at.isoformat()}"
        return hashlib.sha256(stamp.encode()).hexdigest()[:12]

    @property
    def logo_data_uri(self) -> str:
        """For the certificate, whose renderer fetches nothing but data: URLs."""
        if self.logo is None or self.logo_type is None:
            return ""
        return f"data:{self.logo_type};base64,{base64.b64encode(self.logo).decode()}"
