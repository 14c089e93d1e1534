"""The pixel difference of two page images: which pixels changed, the boxes around the
changed regions, and a transparent overlay that tints them.

Pure Pillow, no database. The inputs are our own display renders (at most
`max_page_pixels` each, see portal/files/render.py), so this runs in the worker itself.
Two ~1600 x 2263 px JPEG pages take about 60 ms here, most of it decoding.
"""
from __future__ import annotations

import io
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageChops, ImageFilter

# Per channel, of 255: JPEG noise around a change stays below it, ink does not.
THRESHOLD = 40
CELL = 8  # px: regions are found on a grid of cells this size
MERGE = 2  # cells: changes this close together are one region (a word, a line)
PAD = 3  # cells of room around a region's box
MAX_REGIONS = 100  # the largest, when a page changed all over
# The overlay's palette: 0 clear, 1 ink only in A (removed), 2 ink new or changed in B.
PALETTE = [255, 255, 255, 220, 38, 38, 37, 99, 235]
ALPHA = bytes([0, 210, 150])
REMOVED, ADDED = 1, 2


@dataclass(frozen=True)
class PixelDiff:
    width: int  # the size compared at: B's
    height: int
    changed_pixels: int = 0
    # (x, y, w, h) as fractions of the page, top to bottom.
    regions: list[tuple[float, float, float, float]] = field(default_factory=list)
    overlay: bytes = b""  # PNG; empty when nothing changed


def _rgb(image: Image.Image) -> Image.Image:
    """The page as RGB, a transparent page laid on white (as the viewer shows it)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _over(image: Image.Image, threshold: int) -> Image.Image:
    """255 where the value is above the threshold, else 0."""
    return image.point([255 if v > threshold else 0 for v in range(256)])


def diff_images(a_path: Path, b_path: Path) -> PixelDiff:
    """Compare page A with page B (A is resized to B's size when they differ)."""
    with Image.open(b_path) as opened:
        b = _rgb(opened)
    with Image.open(a_path) as opened:
        a = _rgb(opened)
    if a.size != b.size:
        a = a.resize(b.size, Image.Resampling.BOX)
    width, height = b.size
    red, green, blue = ImageChops.difference(a, b).split()
    mask = _over(ImageChops.lighter(ImageChops.lighter(red, green), blue), THRESHOLD)
    if mask.getbbox() is None:
        return PixelDiff(width, height)
    changed = mask.histogram()[255]
    return PixelDiff(width, height, changed, regions(mask), _overlay(mask, a, b))


def _overlay(mask: Image.Image, a: Image.Image, b: Image.Image) -> bytes:
    """A palette PNG the page's size: ink that was only in A red, the rest blue."""
    darker_in_a = _over(ImageChops.subtract(b.convert("L"), a.convert("L")), THRESHOLD // 2)
    index = mask.point([ADDED if v else 0 for v in range(256)])
    index.paste(REMOVED, mask=ImageChops.darker(mask, darker_in_a))
    index.putpalette(PALETTE)  # "L" becomes "P"
    out = io.BytesIO()
    index.save(out, "PNG", transparency=ALPHA, compress_level=6)
    return out.getvalue()


def regions(mask: Image.Image) -> list[tuple[float, float, float, float]]:
    """Boxes around the changed regions, as fractions of the page: changed cells of a
    coarse grid, joined when within MERGE cells of each other."""
    width, height = mask.size
    grid = _over(mask.reduce(CELL), 0)
    joined = grid.filter(ImageFilter.MaxFilter(2 * MERGE + 1))
    columns, rows = grid.size
    changed, near = grid.tobytes(), bytearray(joined.tobytes())
    boxes: list[tuple[int, int, int, int, int]] = []
    start = near.find(255)
    while start != -1:
        boxes.append(_component(near, changed, columns, rows, start))
        start = near.find(255, start + 1)
    boxes.sort(key=lambda box: box[4], reverse=True)
    found = []
    for left, top, right, bottom, _cells in boxes[:MAX_REGIONS]:
        x0, y0 = max(0, left - PAD) * CELL, max(0, top - PAD) * CELL
        x1 = min(width, (right + 1 + PAD) * CELL)
        y1 = min(height, (bottom + 1 + PAD) * CELL)
        found.append((round(x0 / width, 4), round(y0 / height, 4),
                      round((x1 - x0) / width, 4), round((y1 - y0) / height, 4)))
    return sorted(found, key=lambda box: (box[1], box[0]))


def _component(near: bytearray, changed: bytes, columns: int, rows: int,
               start: int) -> tuple[int, int, int, int, int]:
    """Flood one region of the joined grid (clearing it as it goes); the bounding box of
    its changed cells (left, top, right, bottom) and how many there are."""
    left, top, right, bottom, cells = columns, rows, -1, -1, 0
    near[start] = 0
    queue = deque([start])
    while queue:
        at = queue.popleft()
        y, x = divmod(at, columns)
        if changed[at]:
            left, right = min(left, x), max(right, x)
            top, bottom = min(top, y), max(bottom, y)
            cells += 1
        for step, ok in ((-1, x > 0), (1, x < columns - 1), (-columns, y > 0),
                         (columns, y < rows - 1)):
            if ok and near[at + step]:
                near[at + step] = 0
                queue.append(at + step)
    return left, top, right, bottom, cells
