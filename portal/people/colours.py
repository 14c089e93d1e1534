"""The agency's accent colour, made to read: WCAG 2.2 contrast (1.4.3, at least 4.5:1 for
text) worked out here rather than trusted to whoever picks the colour."""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import format_decimal
from flask_babel import gettext as _

from portal.errors import InvalidInput

HEX = re.compile(r"^#[0-9a-f]{6}$")
AA_TEXT = 4.5
WHITE, BLACK = "#ffffff", "#000000"
# Where the accent is ink: the card, the page and the light blue notices (static/css/app.css).
SURFACES = ("#ffffff", "#f5f6f8", "#e8f1ff")


def parse_hex(value: str | None) -> str:
    """"#RRGGBB" (or "RRGGBB"), lower-cased; InvalidInput otherwise."""
    colour = (value or "").strip().lower()
    if colour and not colour.startswith("#"):
        colour = "#" + colour
    if not HEX.match(colour):
        raise InvalidInput(_("The accent colour must be six hexadecimal digits, like "
                             "#2a5bd7."))
    return colour


def _channels(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def luminance(colour: str) -> float:
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(c) for c in _channels(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _darker(colour: str, factor: float) -> str:
    return "#" + "".join(f"{round(c * factor):02x}" for c in _channels(colour))


@dataclass(frozen=True)
class Palette:
    accent: str  # as chosen: the header band
    on_accent: str  # text on the band: black or white, whichever reads better
    ink: str  # links, buttons and outlines on light surfaces: the accent, darkened if needed

    @property
    def band_ratio(self) -> float:
        return contrast(self.accent, self.on_accent)

    @property
    def ink_ratio(self) -> float:
        return min(contrast(self.ink, s) for s in SURFACES)

    @property
    def adjusted(self) -> bool:
        return self.ink != self.accent


def palette(accent: str) -> Palette:
    """Black or white on the band (one of them always reaches 4.5:1, the worst case being
    a middle grey at 4.58:1), and the accent darkened, hue kept, until it reads as text on
    every light surface with white text on it."""
    on_accent = WHITE if contrast(accent, WHITE) >= contrast(accent, BLACK) else BLACK
    ink, factor = accent, 1.0
    while min(contrast(ink, s) for s in SURFACES) < AA_TEXT and factor > 0:
        factor = round(factor - 0.02, 2)
        ink = _darker(accent, factor)
    return Palette(accent, on_accent, ink)


def _ratio(value: float) -> str:
    """A contrast ratio's first number, one decimal, in the page's locale (4.5 / 4,5)."""
    return format_decimal(round(value, 1), format="0.0")


def explain(p: Palette) -> str:
    """What the admin is told after choosing a colour, in the page's language."""
    if p.on_accent == WHITE:
        band = _("The header band is %(accent)s with white text (%(ratio)s:1).",
                 accent=p.accent, ratio=_ratio(p.band_ratio))
    else:
        band = _("The header band is %(accent)s with black text (%(ratio)s:1).",
                 accent=p.accent, ratio=_ratio(p.band_ratio))
    if not p.adjusted:
        return band + " " + _("Links and buttons use %(accent)s (%(ratio)s:1 on white).",
                              accent=p.accent, ratio=_ratio(p.ink_ratio))
    return band + " " + _(
        "%(accent)s is too light for text on white (%(ratio)s:1, at least %(needed)s:1 is "
        "needed), so links and buttons use the darker %(ink)s (%(ink_ratio)s:1).",
        accent=p.accent, ratio=_ratio(contrast(p.accent, WHITE)), needed=_ratio(AA_TEXT),
        ink=p.ink, ink_ratio=_ratio(p.ink_ratio))
