"""Compare's pixel differences: worked out once per pair of page images, by a job.

The compare view asks for the job whenever a pair it shows has no stored difference yet
(a GET writes nothing; the job writes), and polls until they are all there. The job holds
no transaction while Pillow works and commits each page on its own, so the view fills in
as it goes. Differences are derived data keyed by the two images' storage keys: two
identical images need none, and a row may be deleted at any time.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import NamedTuple

from PIL import Image
from sqlalchemy import literal, select, tuple_
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.files.page_diff import PixelDiff, diff_images
from portal.files.storage import Store, file_store
from portal.models import PageDiff, PageRender, RenderStatus, VersionRender
from portal.notifications.queue import enqueue_unless_waiting

log = logging.getLogger(__name__)
DIFF_JOB = "jobs.compare.diff_pages"
RASTER = {"image/jpeg", "image/png"}  # an SVG page is its own file: no pixels to compare
KeyPair = tuple[str, str]


def job_id(a_version_id: int, b_version_id: int) -> str:
    return f"compare-{a_version_id}-{b_version_id}"


class PageKey(NamedTuple):
    """What compare needs of a rendered page: its display image, and its text if asked."""

    version_id: int
    number: int
    display_key: str
    media_type: str
    text: str = ""


def comparable(a: PageKey | None, b: PageKey | None) -> bool:
    """Do these two pages get a pixel difference? (Identical images need none.)"""
    return (a is not None and b is not None and a.media_type in RASTER
            and b.media_type in RASTER and a.display_key != b.display_key)


def stored(pairs: Iterable[KeyPair]) -> dict[KeyPair, PageDiff]:
    """The differences already worked out for these pairs of display keys (one query)."""
    wanted = list(set(pairs))
    if not wanted:
        return {}
    rows = db.session.scalars(
        select(PageDiff).where(tuple_(PageDiff.a_key, PageDiff.b_key).in_(wanted)))
    return {(row.a_key, row.b_key): row for row in rows}


def ask_for_diffs(a_version_id: int, b_version_id: int) -> None:
    """Queue the job for this pair of versions, unless it is already waiting. Needs no
    transaction, so a GET may call it; if Redis is away the next poll asks again."""
    enqueue_unless_waiting(DIFF_JOB, a_version_id, b_version_id,
                           job_id=job_id(a_version_id, b_version_id))


def page_keys(version_ids: tuple[int, int], *, with_text: bool = False,
              number: int | None = None) -> dict[int, dict[int, PageKey]]:
    """Each version's rendered pages (of a ready render) by number, in one query."""
    text = PageRender.text if with_text else literal("")
    query = (select(PageRender.version_id, PageRender.number, PageRender.display_key,
                    PageRender.media_type, text)
             .join(VersionRender, VersionRender.version_id == PageRender.version_id)
             .where(PageRender.version_id.in_(version_ids),
                    VersionRender.status == RenderStatus.READY))
    if number is not None:
        query = query.where(PageRender.number == number)
    found: dict[int, dict[int, PageKey]] = {v: {} for v in version_ids}
    for row in db.session.execute(query):
        page = PageKey(*row)
        found[page.version_id][page.number] = page
    return found


def missing_pairs(a_version_id: int, b_version_id: int) -> list[KeyPair]:
    """The pairs of page images of these versions (page n with page n) that need a
    difference and have none yet."""
    pages = page_keys((a_version_id, b_version_id))
    a_pages, b_pages = pages[a_version_id], pages[b_version_id]
    pairs = {(a_pages[n].display_key, b_pages[n].display_key)
             for n in a_pages.keys() & b_pages.keys() if comparable(a_pages[n], b_pages[n])}
    done = stored(pairs)
    return sorted(pair for pair in pairs if pair not in done)


def diff_versions(a_version_id: int, b_version_id: int) -> int:
    """The job: work out and store each missing difference; how many it stored. A second
    run (or a second worker) finds them there, or loses the race harmlessly."""
    todo = missing_pairs(a_version_id, b_version_id)
    db.session.rollback()  # no transaction while the pixels are compared
    store = file_store()
    made = 0
    for a_key, b_key in todo:
        db.session.add(_difference(store, a_key, b_key))
        try:
            db.session.commit()
            made += 1
        except IntegrityError:  # another run stored this pair first
            db.session.rollback()
    return made


def _difference(store: Store, a_key: str, b_key: str) -> PageDiff:
    row = PageDiff(a_key=a_key, b_key=b_key, width=0, height=0, changed_pixels=0,
                   regions="[]", overlay_key="", error="")
    try:  # the images themselves on a local store; temporary copies from S3
        with store.local_copy(a_key) as a_path, store.local_copy(b_key) as b_path:
            found: PixelDiff = diff_images(a_path, b_path)
    except FileNotFoundError:
        row.error = "The page images are missing; they are made again from the file."
        return row
    except (OSError, ValueError, Image.DecompressionBombError):
        log.exception("comparing page images %s and %s failed", a_key, b_key)
        row.error = "These pages could not be compared."
        return row
    row.width, row.height, row.changed_pixels = found.width, found.height, found.changed_pixels
    row.regions = json.dumps([list(box) for box in found.regions])
    row.overlay_key = store.put_bytes(found.overlay) if found.overlay else ""
    return row
