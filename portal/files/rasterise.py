"""The child process that turns an untrusted PDF or image into page images.

Run only by portal/files/render.py, as `python -I rasterise.py SOURCE OUT_DIR KIND LIMITS`:
a process of its own, with its CPU time, address space and file sizes capped before it
reads a byte of the file, so a hostile file ends this process and never the worker. It
imports nothing of the portal (isolated mode, not even its own folder on the path) and
writes the images into OUT_DIR, then one JSON line on stdout: {"pages": [...]} or
{"error": "…"}. The parent hashes the images into the store and records them.
"""
from __future__ import annotations

import io
import json
import math
import resource
import sys
import warnings
from pathlib import Path
from typing import Any

MB = 1024 * 1024
POINTS_PER_METRE = 72 / 0.0254
DISPLAY_QUALITY, THUMB_QUALITY = 80, 75
MAX_TEXT = 50_000  # characters kept per page, for the compare view


class Refused(Exception):
    """The file cannot be previewed; the message says why, in words for people."""


def limit_self(limits: dict[str, Any]) -> None:
    cpu, memory = int(limits["cpu_seconds"]), int(limits["memory_mb"]) * MB
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU, then SIGKILL
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * MB, 64 * MB))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _metres(points: float) -> str:
    return f"{points / POINTS_PER_METRE:,.1f} m"


def previewable_shape(width: float, height: float, limits: dict[str, Any]) -> bool:
    """Not a sliver: a page or image far longer than it is wide has no useful preview
    (and its thumbnail would be enormous)."""
    return min(width, height) >= 1 and max(width, height) / min(width, height) <= limits[
        "max_aspect"]


def display_scale(width: float, height: float, limits: dict[str, Any]) -> float:
    """The scale that gives the display width, never above the pixel cap."""
    return min(limits["display_width"] / width,
               math.sqrt(limits["max_page_pixels"] / (width * height)))


def _save(image: Any, name: str, out: Path, quality: int) -> tuple[str, str]:
    """JPEG (fast, and small enough) unless the image is transparent: then PNG."""
    if image.mode == "RGBA":
        image.save(out / f"{name}.png", "PNG", compress_level=1)
        return f"{name}.png", "image/png"
    image.save(out / f"{name}.jpg", "JPEG", quality=quality)
    return f"{name}.jpg", "image/jpeg"


def page_images(image: Any, number: int, out: Path, limits: dict[str, Any]) -> dict[str, Any]:
    """Write the display image (as given, RGB or RGBA) and its thumbnail; describe both."""
    from PIL import Image

    display, media_type = _save(image, f"p{number}", out, DISPLAY_QUALITY)
    width = min(limits["thumb_width"], image.width)
    height = max(1, round(image.height * width / image.width))
    thumb = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0)
    thumb_name, _ = _save(thumb, f"t{number}", out, THUMB_QUALITY)
    return {"number": number, "width": image.width, "height": image.height,
            "thumb_width": width, "thumb_height": height, "display": display,
            "thumb": thumb_name, "media_type": media_type}


def pdf_pages(source: Path, out: Path, limits: dict[str, Any]) -> list[dict[str, Any]]:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(source)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise Refused("It is protected by a password.") from exc
        raise Refused("It is damaged, or not a PDF we can read.") from exc
    count = len(document)
    if count == 0:
        raise Refused("It has no pages.")
    if count > limits["max_pages"]:
        raise Refused(f"It has {count:,} pages; previews are made for up to "
                      f"{limits['max_pages']:,}.")
    pages = []
    for index in range(count):
        page = document[index]
        width, height = page.get_size()
        if max(width, height) > limits["max_page_points"]:
            raise Refused(f"Page {index + 1} is {_metres(width)} by {_metres(height)}; previews "
                          f"are made for pages up to {_metres(limits['max_page_points'])}.")
        if not previewable_shape(width, height, limits):
            raise Refused(f"Page {index + 1} is too narrow for its length to preview.")
        try:
            bitmap = page.render(scale=display_scale(width, height, limits), rev_byteorder=True)
        except pdfium.PdfiumError as exc:
            raise Refused(f"Page {index + 1} could not be drawn.") from exc
        image = bitmap.to_pil()
        if image.mode != "RGB":
            image = image.convert("RGB")
        described = page_images(image, index + 1, out, limits)
        text = page.get_textpage().get_text_range()
        described["text"] = text.replace("\r\n", "\n")[:MAX_TEXT]
        pages.append(described)
        page.close()
    document.close()
    return pages


def image_pages(source: Path, out: Path, limits: dict[str, Any]) -> list[dict[str, Any]]:
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = limits["max_image_pixels"]
    warnings.simplefilter("error", Image.DecompressionBombWarning)  # the limit, not twice it
    try:
        with Image.open(source) as opened:
            width, height = opened.size
            if not previewable_shape(width, height, limits):
                raise Refused("It is too narrow for its length to preview.")
            if opened.format == "JPEG":  # decode at the smallest size still large enough
                opened.draft("RGB", (limits["display_width"], limits["display_width"]))
            opened.seek(0)  # the first frame of an animation
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Refused(f"The image is too large to preview; previews are made for up to "
                      f"{limits['max_image_pixels'] / 1e6:,.0f} megapixels.") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise Refused("It is damaged, or not an image we can read.") from exc
    alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    image = image.convert("RGBA" if alpha else "RGB")
    if image.width > limits["display_width"]:
        height = max(1, round(image.height * limits["display_width"] / image.width))
        image = image.resize((limits["display_width"], height), Image.Resampling.LANCZOS,
                             reducing_gap=3.0)
    described = page_images(image, 1, out, limits)
    described["text"] = ""
    return [described]


def main(argv: list[str]) -> int:
    source, out, kind, raw_limits = Path(argv[1]), Path(argv[2]), argv[3], argv[4]
    limits = json.loads(raw_limits)
    limit_self(limits)
    try:
        pages = (pdf_pages if kind == "pdf" else image_pages)(source, out, limits)
        answer: dict[str, Any] = {"pages": pages}
    except Refused as exc:
        answer = {"error": str(exc)}
    except MemoryError:
        answer = {"error": "Previewing it needs more memory than we allow."}
    buffer = io.StringIO()
    json.dump(answer, buffer)
    sys.stdout.write(buffer.getvalue() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
