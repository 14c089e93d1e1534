"""The agency's identity as clients see it: name, sender name, accent colour and logo.
Admins change it; pages, emails and certificates read it through `current()`."""
from __future__ import annotations

import hashlib
import io
from datetime import datetime
from email.headerregistry import Address
from email.utils import parseaddr

from flask_babel import gettext as _
from PIL import Image, UnidentifiedImageError

from portal import audit
from portal.errors import InvalidInput
from portal.extensions import db
from portal.files.svg_clean import clean_svg
from portal.models import AgencyProfile, User
from portal.models.agency import DEFAULT_ACCENT, DEFAULT_NAME
from portal.people.colours import Palette, palette, parse_hex
from portal.permissions import require_admin
from portal.validation import single_line

PNG_MAX_BYTES = 500 * 1024
PNG_MAX_SIDE = 2000
PNG_MIN_SIDE = 16


def current() -> AgencyProfile:
    """The saved profile, or the defaults (not saved) before an admin sets one."""
    profile = db.session.get(AgencyProfile, 1)
    if profile is None:
        profile = AgencyProfile(id=1, name=DEFAULT_NAME, sender_name="", accent=DEFAULT_ACCENT,
                                updated_at=datetime(2026, 1, 1))
    return profile


def colours(profile: AgencyProfile) -> Palette:
    return palette(profile.accent)


def _saved(now: datetime) -> AgencyProfile:
    profile = db.session.get(AgencyProfile, 1)
    if profile is None:
        profile = AgencyProfile(id=1, name=DEFAULT_NAME, sender_name="", accent=DEFAULT_ACCENT,
                                updated_at=now)
        db.session.add(profile)
    return profile


def update_identity(actor: User, name: str, sender_name: str, accent: str,
                    now: datetime) -> AgencyProfile:
    require_admin(actor, "change the agency's identity")
    name = single_line(name, _("The agency's name"), 120)
    sender_name = (single_line(sender_name, _("The sender name"), 120) if sender_name.strip()
                   else "")
    accent = parse_hex(accent)
    profile = _saved(now)
    profile.name, profile.sender_name, profile.accent = name, sender_name, accent
    profile.updated_at = now
    audit.record(actor, "agency.updated", profile, name=name, sender_name=sender_name,
                 accent=accent)
    return profile


def _clean_png(data: bytes) -> bytes:
    """A PNG re-encoded by Pillow (no stray chunks or trailing bytes survive), within size."""
    if len(data) > PNG_MAX_BYTES:
        raise InvalidInput(_("The PNG is larger than %(size)d KB.", size=PNG_MAX_BYTES // 1024))
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                raise InvalidInput(_("The file is not a PNG image."))
            width, height = image.size  # from the header, before decoding anything
            if max(width, height) > PNG_MAX_SIDE or min(width, height) < PNG_MIN_SIDE:
                raise InvalidInput(_(
                    "The logo must be between %(min)d and %(max)d pixels on each side; this "
                    "one is %(width)d by %(height)d.", min=PNG_MIN_SIDE, max=PNG_MAX_SIDE,
                    width=width, height=height))
            image.load()
            out = io.BytesIO()
            image.save(out, format="PNG", optimize=True)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise InvalidInput(_("The PNG could not be read; is it a damaged file?")) from None
    return out.getvalue()


def set_logo(actor: User, data: bytes, now: datetime) -> AgencyProfile:
    """A PNG (checked and re-encoded) or an SVG (rebuilt from an allowlist), judged by its
    content, not its name."""
    require_admin(actor, "change the agency's logo")
    if not data:
        raise InvalidInput(_("Choose a PNG or SVG file for the logo."))
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        cleaned, media_type = _clean_png(data), "image/png"
    elif b"<svg" in data[:4096]:
        cleaned, media_type = clean_svg(data), "image/svg+xml"
    else:
        raise InvalidInput(_("The logo must be a PNG or an SVG image."))
    profile = _saved(now)
    profile.logo, profile.logo_type = cleaned, media_type
    profile.logo_sha256 = hashlib.sha256(cleaned).hexdigest()
    profile.updated_at = now
    audit.record(actor, "agency.logo_set", profile, media_type=media_type,
                 sha256=profile.logo_sha256, size=len(cleaned))
    return profile


def remove_logo(actor: User, now: datetime) -> AgencyProfile:
    require_admin(actor, "change the agency's logo")
    profile = _saved(now)
    profile.logo = profile.logo_type = profile.logo_sha256 = None
    profile.updated_at = now
    audit.record(actor, "agency.logo_removed", profile)
    return profile


def from_header(profile: AgencyProfile, configured_sender: str) -> str:
    """`"<sender name or agency name>" <configured address>`: the agency's name, the
    deployment's address (MAIL_DEFAULT_SENDER, whose own display name is replaced)."""
    _, address = parseaddr(configured_sender)
    return str(Address(display_name=profile.from_name, addr_spec=address))
