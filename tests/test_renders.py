"""Page previews: a job renders each version's pages to images (and text) in a limited child
process, the viewer reads them in a fixed number of queries, and they are served only to
people who may see the version, cached for a year under their hashes."""
from __future__ import annotations

import io
import os
import struct
import time
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
import weasyprint
from PIL import Image
from sqlalchemy import func, select, update

import jobs.periodic
import jobs.renders
from portal import workflow
from portal.demo.samples import pdf_from_objects, sample_png
from portal.extensions import db
from portal.files.render import RENDER_JOB, job_id
from portal.models import (
    DeliverableState,
    PageRender,
    RenderStatus,
    Version,
    VersionRender,
    utcnow,
)
from portal.reports import renders
from portal.workflow.links import issue_token
from tests.conftest import stored_path
from tests.hostile_pdfs import text_bomb_pdf

YEAR = "private, max-age=31536000, immutable"
WORDS = ("Headline", "Pricing", "Contact")


def three_page_pdf(second: str = "Pricing") -> bytes:
    pages = "".join(
        f'<section style="page-break-after: always"><h1>{word}</h1>'
        f"<p>{'Page text for the compare view. ' * 30}</p></section>"
        for word in (WORDS[0], second, WORDS[2]))
    return weasyprint.HTML(string=f"<html><body>{pages}</body></html>").write_pdf()


def raw_pdf(pages: int = 1, media_box: str = "0 0 595 842") -> bytes:
    """A PDF built byte by byte: `pages` pages sharing one content stream."""
    content = b"BT /F1 24 Tf 72 700 Td (Hello) Tj ET"
    first = 5
    kids = b" ".join(b"%d 0 R" % (first + i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [" + media_box.encode()
                + b"] /Contents 4 0 R /Resources << /Font << /F1 3 0 R >> >> >>"] * pages
    return pdf_from_objects(objects, header=b"%PDF-1.4\n")


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A few hundred bytes that claim to be a 10-gigapixel image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 8, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
            + chunk(b"IEND", b""))


def image_bytes(size: tuple[int, int], mode: str = "RGB", fmt: str = "JPEG",
                orientation: int | None = None) -> bytes:
    image = Image.new(mode, size, (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30))
    out = io.BytesIO()
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(out, fmt, exif=exif)
    else:
        image.save(out, fmt)
    return out.getvalue()


@pytest.fixture
def draft(make_deliverable):
    return make_deliverable(DeliverableState.DRAFT, with_version=False)


@pytest.fixture
def upload(staff, draft):
    """Upload a file as the draft's next version; the render job has run when it returns
    (the test's commit waits for the background jobs)."""
    def add(content: bytes, name: str) -> Version:
        version = workflow.upload_version(staff, draft, io.BytesIO(content), name, "")
        db.session.commit()
        db.session.expire_all()
        return version
    return add


def render_of(version: Version) -> VersionRender:
    return db.session.scalar(select(VersionRender).where(VersionRender.version_id == version.id))


def pages_of(version: Version) -> list[PageRender]:
    return list(db.session.scalars(select(PageRender).where(PageRender.version_id == version.id)
                                   .order_by(PageRender.number)))


# --- rendering -----------------------------------------------------------------------

def test_a_pdf_renders_each_page_at_two_sizes_with_its_text(app, upload):
    version = upload(three_page_pdf(), "brochure.pdf")

    record = render_of(version)
    assert (record.status, record.page_count, record.error) == (RenderStatus.READY, 3, "")
    assert record.attempts == 1 and record.rendered_at is not None
    pages = pages_of(version)
    assert [p.number for p in pages] == [1, 2, 3]
    for page, word in zip(pages, WORDS, strict=True):
        assert abs(page.width - 1600) <= 2 and page.height > page.width  # A4, portrait
        assert page.thumb_width == 240 and page.media_type == "image/jpeg"
        assert word in page.text and "compare view" in page.text
        with Image.open(stored_path(app, page.display_key)) as display:
            assert (display.format, display.size) == ("JPEG", (page.width, page.height))
        with Image.open(stored_path(app, page.thumb_key)) as thumb:
            assert thumb.size == (page.thumb_width, page.thumb_height)
    assert renders.page_texts(version.id)[2].startswith("Pricing")


def test_the_job_is_idempotent_and_the_sweep_asks_again_for_a_lost_one(app, upload):
    version = upload(three_page_pdf(), "brochure.pdf")
    keys = [(p.display_key, p.thumb_key) for p in pages_of(version)]

    assert jobs.renders.render(version.id) == "ready"  # a second run changes nothing
    assert [(p.display_key, p.thumb_key) for p in pages_of(version)] == keys
    assert render_of(version).attempts == 1

    # A job lost with Redis: the row is still pending a while later, so the sweep asks again.
    db.session.execute(update(VersionRender).where(VersionRender.version_id == version.id)
                       .values(status=RenderStatus.PENDING, attempts=0, started_at=None,
                               requested_at=utcnow().replace(year=2020)))
    db.session.commit()
    assert jobs.periodic.every_minute()["renders_requested"] == 1
    db.session.expire_all()
    assert render_of(version).status == RenderStatus.READY
    assert db.session.scalar(select(func.count(PageRender.id))
                             .where(PageRender.version_id == version.id)) == 3
    assert jobs.periodic.every_minute()["renders_requested"] == 0
    assert (RENDER_JOB, job_id(version.id)) == ("jobs.renders.render", f"render-{version.id}")


def test_images_get_derivatives_with_exif_orientation_and_transparency(app, upload):
    photo = upload(image_bytes((400, 200), orientation=6), "photo.jpg")  # rotated 90°
    [page] = pages_of(photo)
    assert (page.width, page.height, page.media_type) == (200, 400, "image/jpeg")

    big = upload(image_bytes((3200, 1000), fmt="WEBP"), "banner.webp")
    [page] = pages_of(big)
    assert (page.width, page.height, page.thumb_width) == (1600, 500, 240)

    logo = upload(image_bytes((300, 100), mode="RGBA", fmt="PNG"), "logo.png")
    [page] = pages_of(logo)
    assert (page.width, page.media_type) == (300, "image/png")
    with Image.open(stored_path(app, page.display_key)) as display:
        assert display.mode == "RGBA"


def test_svg_is_its_own_page_and_other_types_keep_a_download(app, upload):
    svg = upload(b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 100">'
                 b'<script>alert(1)</script></svg>', "logo.svg")
    [page] = pages_of(svg)
    assert (page.display_key, page.media_type) == (svg.storage_key, "image/svg+xml")
    assert (page.width, page.height) == (400, 100)

    archive = io.BytesIO()
    import zipfile
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "hello")
    other = upload(archive.getvalue(), "assets.zip")
    assert render_of(other).status == RenderStatus.NO_PREVIEW
    viewer = renders.viewer(other.id)
    assert not viewer.ready and not viewer.pending and "no preview" in viewer.message


# --- hostile and broken files -----------------------------------------------------------

@pytest.fixture
def tight_limits(app_config):
    app_config.update(RENDER_CPU_SECONDS=2, RENDER_MAX_IMAGE_MEGAPIXELS=1)


@pytest.mark.parametrize(("content", "name", "says"), [
    (raw_pdf(pages=3000), "thousands.pdf", "It has 3,000 pages; previews are made for up to 300"),
    (raw_pdf(media_box="0 0 566929 842"), "wide.pdf", "Page 1 is 200.0 m by 0.3 m"),
    (raw_pdf(media_box="0 0 10 5000"), "sliver.pdf", "too narrow for its length"),
    (b"%PDF-1.7\n" + b"\x00garbage" * 100, "broken.pdf", "damaged, or not a PDF"),
    (png_bomb(), "bomb.png", "too large to preview"),
    (image_bytes((1500, 1000), fmt="PNG"), "just-over.png", "up to 1 megapixels"),
    (text_bomb_pdf(repeats=300_000, pages=5, draws=4), "slow.pdf", "2 s of processor time"),
], ids=["thousands-of-pages", "200m-wide", "sliver", "broken", "png-bomb", "pixel-limit",
        "cpu-limit"])
def test_hostile_files_cannot_be_previewed_and_the_worker_lives_on(
        tight_limits, app, upload, content, name, says):
    started = time.monotonic()
    version = upload(content, name)
    elapsed = time.monotonic() - started

    record = render_of(version)
    assert record.status == RenderStatus.FAILED, record.error
    assert says in record.error
    assert pages_of(version) == [] and elapsed < 20
    viewer = renders.viewer(version.id)
    assert viewer.failed and viewer.message.startswith(
        "This file cannot be previewed; download it.")
    # The same worker (the background thread) renders the next file.
    assert render_of(upload(raw_pdf(), "fine.pdf")).status == RenderStatus.READY


def test_the_memory_limit_applies_to_the_renderer(app_config, app, upload):
    app.config["RENDER_MEMORY_MB"] = 40  # too little even to load PDFium
    version = upload(raw_pdf(), "fine.pdf")
    assert render_of(version).status == RenderStatus.FAILED
    assert "memory" in render_of(version).error
    app.config["RENDER_MEMORY_MB"] = 1024
    assert render_of(upload(raw_pdf(2), "fine-2.pdf")).page_count == 2


def test_a_render_that_never_finishes_is_failed_after_three_attempts(app, upload):
    version = upload(raw_pdf(), "fine.pdf")
    db.session.execute(update(VersionRender).where(VersionRender.version_id == version.id)
                       .values(status=RenderStatus.PENDING, attempts=3, started_at=None))
    db.session.commit()
    assert jobs.renders.render(version.id) == "failed"
    assert "every time" in render_of(version).error


# --- rebuilding derived data -----------------------------------------------------------

def test_files_render_missing_rebuilds_lost_images_and_versions_without_a_render(app, upload):
    version = upload(three_page_pdf(), "brochure.pdf")
    older = upload(sample_png(8, 8), "old.png")
    for page in pages_of(version):
        stored_path(app, page.display_key).unlink()
    db.session.execute(PageRender.__table__.delete().where(PageRender.version_id == older.id))
    db.session.execute(VersionRender.__table__.delete()
                       .where(VersionRender.version_id == older.id))
    db.session.commit()

    result = app.test_cli_runner().invoke(args=["files", "render", "--missing"])

    assert result.exit_code == 0, result.output
    assert "2 versions rendered (ready: 2)" in result.output
    db.session.expire_all()
    assert all(stored_path(app, p.display_key).exists() for p in pages_of(version))
    assert render_of(older).status == RenderStatus.READY and len(pages_of(older)) == 1
    again = app.test_cli_runner().invoke(args=["files", "render", "--missing"])
    assert "0 versions rendered" in again.output


# --- the read model -------------------------------------------------------------------

def test_the_viewer_reads_any_number_of_versions_in_one_query(app, upload, count_queries):
    first, second = upload(three_page_pdf(), "a.pdf").id, upload(raw_pdf(), "b.pdf").id
    with app.test_request_context():
        renders.viewers([])  # the transaction has begun: only the viewer's own queries count
        with count_queries() as one:
            renders.viewers([first])
        with count_queries() as three:
            views = renders.viewers([first, second, 999_999])
    assert one.count == three.count == 1  # renders and their pages, joined
    assert views[999_999].status is None and not views[999_999].ready
    viewer = views[first]
    assert viewer.ready and [p.number for p in viewer.pages] == [1, 2, 3]
    page = viewer.pages[1]
    assert page.url.startswith(f"/versions/{first}/pages/2.jpg?h=")
    assert page.thumb_url.startswith(f"/versions/{first}/thumbs/2.jpg?h=")
    with app.test_request_context():
        client_view = renders.viewer(first, public_id="abc")
    assert client_view.pages[0].url.startswith(f"/review/abc/versions/{first}/pages/1.jpg")


# --- serving --------------------------------------------------------------------------

def test_staff_get_page_images_with_a_years_private_caching(app, browser, staff, upload):
    version = upload(three_page_pdf(), "brochure.pdf")
    url = f"/versions/{version.id}/pages/2.jpg"
    assert browser.get(url).status_code == 302  # not signed in: to the sign-in page

    browser.login(staff.email)
    response = browser.get(url + "?h=whatever")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.headers["Cache-Control"] == YEAR
    page = pages_of(version)[1]
    assert response.data == stored_path(app, page.display_key).read_bytes()
    again = browser.get(url, headers={"If-None-Match": f'"{page.display_key}"'})
    assert again.status_code == 304
    thumb = browser.get(f"/versions/{version.id}/thumbs/2.jpg")
    assert thumb.status_code == 200 and thumb.headers["Cache-Control"] == YEAR
    for wrong in ("pages/2.png", "pages/4.jpg", "pages/0.jpg"):
        assert browser.get(f"/versions/{version.id}/{wrong}").status_code == 404
    assert browser.get("/").headers["Cache-Control"] == "private, no-store"  # pages still not


def test_clients_see_only_the_versions_sent_to_them(app, make_deliverable, make_browser,
                                                     upload, draft):
    sent = make_deliverable(DeliverableState.DELIVERED, approvers=2)
    shown = sent.current_version
    first, second = sent.open_request.approvers
    db.session.commit()

    alice, bob, stranger = make_browser(), make_browser(), make_browser()
    alice.get(f"/r/{issue_token(first)}")  # as the emailed links would
    bob.get(f"/r/{issue_token(second)}")
    url = f"/review/{first.public_id}/versions/{shown.id}/pages/1.jpg"

    response = alice.get(url)
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.headers["Cache-Control"] == YEAR
    assert alice.get(url.replace("/pages/", "/thumbs/")).status_code == 200
    assert bob.get(url).status_code == 403  # another approver's URL
    assert stranger.get(url).status_code == 403  # no link opened in this browser
    other = upload(raw_pdf(), "not-sent.pdf")  # another deliverable's version
    assert alice.get(f"/review/{first.public_id}/versions/{other.id}/pages/1.jpg"
                     ).status_code == 404
    assert alice.get(f"/review/nobody/versions/{shown.id}/pages/1.jpg").status_code == 404


def test_an_svg_page_is_served_as_an_image_that_runs_nothing(app, browser, staff, upload):
    version = upload(b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
                     b"<script>alert(1)</script></svg>", "logo.svg")
    browser.login(staff.email)
    response = browser.get(f"/versions/{version.id}/pages/1.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == YEAR
    assert Path(stored_path(app, version.storage_key)).read_bytes() == response.data


def test_the_every_minute_job_forgets_scratch_a_killed_process_left(app):
    """A render or upload killed half-way leaves its temporary copy in the store's scratch
    folder; the clock's job removes what has lain there for hours, by the real clock."""
    from portal.files.storage import file_store

    scratch = file_store().scratch()
    stale, fresh = scratch / "copy-stale", scratch / "copy-fresh"
    stale.write_bytes(b"half a file")
    fresh.write_bytes(b"an upload under way")
    hours_ago = time.time() - 7 * 3600
    os.utime(stale, (hours_ago, hours_ago))
    far_ahead = (utcnow() + timedelta(days=30)).isoformat()  # a fast-forwarded sweep
    assert jobs.periodic.every_minute(far_ahead)["scratch_entries_removed"] == 1
    assert not stale.exists() and fresh.exists()
