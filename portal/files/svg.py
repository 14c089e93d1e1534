"""An SVG's shape, read from its root element's attributes without an XML parser (no
entities, no external references: the file is untrusted and is never parsed as XML here)."""
from __future__ import annotations

import re

_ROOT = re.compile(rb"<svg\b([^>]*)>", re.I | re.S)
_ATTRIBUTE = re.compile(rb"""\s(width|height|viewBox)\s*=\s*(["'])(.*?)\2""", re.I | re.S)
_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(px|pt|pc|mm|cm|in)?\s*$")
PX_PER_UNIT = {"": 1.0, "px": 1.0, "pt": 96 / 72, "pc": 16.0, "mm": 96 / 25.4,
               "cm": 96 / 2.54, "in": 96.0}
DEFAULT = (1600.0, 1200.0)  # when the file does not say (or says only percentages)
LARGEST = 1_000_000.0


def _length(raw: str | None) -> float | None:
    match = _LENGTH.match(raw or "")
    if match is None:
        return None
    value = float(match.group(1)) * PX_PER_UNIT[match.group(2) or ""]
    return value if 0 < value <= LARGEST else None


def _view_box(raw: str | None) -> tuple[float, float] | None:
    parts = re.split(r"[\s,]+", (raw or "").strip())
    try:
        width, height = float(parts[2]), float(parts[3])
    except (IndexError, ValueError):
        return None
    return (width, height) if 0 < width <= LARGEST and 0 < height <= LARGEST else None


def svg_size(head: bytes) -> tuple[float, float]:
    """Width and height in CSS pixels (or the viewBox's proportions), from the file's
    first bytes; a default landscape shape when it does not say."""
    root = _ROOT.search(head)
    if root is None:
        return DEFAULT
    attributes = {name.decode().lower(): value.decode("utf-8", "replace")
                  for name, _, value in _ATTRIBUTE.findall(b" " + root.group(1))}
    width, height = _length(attributes.get("width")), _length(attributes.get("height"))
    box = _view_box(attributes.get("viewbox"))
    if width and height:
        return width, height
    if box and width:
        return width, width * box[1] / box[0]
    if box and height:
        return height * box[0] / box[1], height
    return box or DEFAULT
