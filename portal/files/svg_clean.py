"""An uploaded SVG logo, rebuilt from an allowlist: shapes, text, gradients and styles,
and nothing that runs, loads or points outside the file.

The file is untrusted. A DOCTYPE (hence any entity) is refused before parsing, so the
parser (the standard library's expat) expands nothing; the tree is then copied element by
element, keeping only allowed names and attributes, and serialised anew. The result is
served as an image with a sandboxing CSP and drawn by WeasyPrint with a fetcher that
reaches nothing, so this is one layer of three.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from portal.errors import InvalidInput

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
MAX_BYTES = 200 * 1024

ELEMENTS = {
    "svg", "g", "defs", "symbol", "use", "title", "desc", "path", "rect", "circle",
    "ellipse", "line", "polyline", "polygon", "text", "tspan", "textPath", "linearGradient",
    "radialGradient", "stop", "clipPath", "mask", "pattern", "style",
}
ATTRIBUTES = {
    "id", "class", "style", "transform", "viewBox", "preserveAspectRatio", "width", "height",
    "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "fx", "fy", "d", "points",
    "pathLength", "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width",
    "stroke-opacity", "stroke-linecap", "stroke-linejoin", "stroke-miterlimit",
    "stroke-dasharray", "stroke-dashoffset", "opacity", "color", "clip-path", "clip-rule",
    "mask", "offset", "stop-color", "stop-opacity", "gradientUnits", "gradientTransform",
    "spreadMethod", "patternUnits", "patternContentUnits", "patternTransform",
    "clipPathUnits", "maskUnits", "maskContentUnits", "font-family", "font-size",
    "font-weight", "font-style", "text-anchor", "dominant-baseline", "letter-spacing",
    "dx", "dy", "rotate", "textLength", "lengthAdjust", "visibility", "display",
    "vector-effect", "href", "role", "aria-label", "lang", "xml:space",
}
# url(#local) only: no other url(), no @import, no expression(), no escapes to hide them.
_URL = re.compile(r"url\s*\(\s*(['\"]?)(.*?)\1\s*\)", re.I | re.S)
_UNSAFE_CSS = re.compile(r"@import|expression\s*\(|\\|javascript:|-moz-binding", re.I)


def _safe_css(value: str) -> bool:
    if _UNSAFE_CSS.search(value):
        return False
    return all(target.startswith("#") for _, target in _URL.findall(value))


def _local_name(name: str) -> tuple[str | None, str]:
    if name.startswith("{"):
        ns, _, local = name[1:].partition("}")
        return ns, local
    return None, name


def _copy(source: ET.Element, parent: ET.Element | None) -> ET.Element | None:
    ns, tag = _local_name(source.tag)
    if ns != SVG_NS or tag not in ELEMENTS:
        return None  # script, foreignObject, image, a, animate… and anything unknown
    element = ET.Element(f"{{{SVG_NS}}}{tag}") if parent is None \
        else ET.SubElement(parent, f"{{{SVG_NS}}}{tag}")
    for name, value in source.attrib.items():
        attr_ns, local = _local_name(name)
        if attr_ns == XLINK_NS and local == "href":
            local = "href"
        elif attr_ns == "http://www.w3.org/XML/1998/namespace":
            local = f"xml:{local}"
        elif attr_ns is not None:
            continue
        if local not in ATTRIBUTES or not _safe_css(value):
            continue
        if local == "href" and not value.startswith("#"):
            continue
        element.set("{http://www.w3.org/XML/1998/namespace}space" if local == "xml:space"
                    else local, value)
    if tag == "style":
        css = source.text or ""
        element.text = css if _safe_css(css) else ""
    elif tag in {"title", "desc", "text", "tspan", "textPath"}:
        element.text = source.text
    for child in source:
        copied = _copy(child, element)
        if copied is not None:
            copied.tail = child.tail if tag in {"text", "tspan", "textPath"} else None
    return element


def clean_svg(data: bytes) -> bytes:
    """The logo rebuilt from the allowlist; InvalidInput if it is not a small, plain SVG."""
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"The SVG is larger than {MAX_BYTES // 1024} KB.")
    if re.search(rb"<!DOCTYPE|<!ENTITY", data, re.I):
        raise InvalidInput("The SVG declares a DOCTYPE or entities; save it as plain SVG "
                           "without them.")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise InvalidInput(f"The SVG could not be read ({exc}).") from None
    if _local_name(root.tag) != (SVG_NS, "svg"):
        raise InvalidInput("The file is not an SVG image (its root element is not <svg>).")
    cleaned = _copy(root, None)
    assert cleaned is not None
    if not cleaned.get("viewBox") and not (cleaned.get("width") and cleaned.get("height")):
        raise InvalidInput("The SVG needs a viewBox (or a width and height) to be scaled.")
    ET.register_namespace("", SVG_NS)
    return ET.tostring(cleaned, encoding="utf-8", xml_declaration=False)
