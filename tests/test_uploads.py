"""Uploading versions over HTTP: what lands in the database and in the file store."""
from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.demo.samples import sample_pdf, sample_png
from portal.extensions import db
from portal.models import DeliverableState, PageRender, Role, Version
from tests.conftest import stored_path

S = DeliverableState
MB = 1024 * 1024
WORD = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
SVG = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
       b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b'<rect width="10" height="10" fill="#2a5ac8"/></svg>\n')
SVG_WITH_DOCTYPE = (b'<?xml version="1.0" standalone="no"?>\n'
                    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
                    b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
                    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>\n')
# What Adobe Illustrator writes with "SVG 1.1" and editing capabilities kept: a DOCTYPE
# with an internal subset of entity declarations before the <svg> root.
SVG_FROM_ILLUSTRATOR = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<!-- Generator: Adobe Illustrator 16.0.0, SVG Export Plug-In . SVG Version: 6.00 -->\n'
    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
    b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [\n'
    b'\t<!ENTITY ns_extend "http://ns.adobe.com/Extensibility/1.0/">\n'
    b'\t<!ENTITY ns_ai "http://ns.adobe.com/AdobeIllustrator/10.0/">\n'
    b']>\n'
    b'<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<rect width="10" height="10"/></svg>\n'
)
# Unicode's bidirectional controls: they reorder how the rest of a name is displayed.
BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# --- helpers -------------------------------------------------------------------------

def office_file(marker: str) -> bytes:
    """A minimal Office Open XML container: the content-types part and one marker part."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml",
                         '<?xml version="1.0" encoding="UTF-8"?><Types xmlns='
                         '"http://schemas.openxmlformats.org/package/2006/content-types"/>')
        archive.writestr(marker, '<?xml version="1.0" encoding="UTF-8"?><root/>')
    return buf.getvalue()


def plain_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", "Fonts and logos for the homepage.")
        archive.writestr("logo/logo.txt", "not really a logo")
    return buf.getvalue()


def pdf_of_size(size: int) -> bytes:
    """A real PDF padded with a trailing comment to exactly `size` bytes."""
    pdf = sample_pdf("Big file") + b"%"
    assert len(pdf) < size
    return pdf + b"x" * (size - len(pdf))


def upload(browser, deliverable_id: int, content: bytes, name: str,
           what_changed: str = "Tightened the spacing"):
    return browser.post(
        f"/deliverables/{deliverable_id}/versions",
        data={"file": (io.BytesIO(content), name), "what_changed": what_changed},
        content_type="multipart/form-data",
    )


def versions_of(deliverable_id: int) -> list[Version]:
    return list(db.session.scalars(
        select(Version).where(Version.deliverable_id == deliverable_id).order_by(Version.number)
    ))


def store_root(app) -> Path:
    return Path(app.config["FILE_STORE"])


def stored_files(app) -> set[str]:
    """Every file under the store, relative to its root."""
    root = store_root(app)
    if not root.exists():
        return set()
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def preview_files(app) -> set[str]:
    """The page images the render job stored (derived data, beside the versions)."""
    keys = {k for page in db.session.scalars(select(PageRender))
            for k in (page.display_key, page.thumb_key)}
    return {stored_path(app, k).relative_to(store_root(app)).as_posix() for k in keys}


def all_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def assert_nothing_new_stored(app, before: set[str]) -> None:
    assert stored_files(app) == before
    incoming = store_root(app) / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir()), "a temp file was left behind"


def page(response) -> str:
    return response.get_data(as_text=True)


def alert(response) -> str:
    """The error the page shows, for assertion messages."""
    match = re.search(r'role="alert">(.*?)</(?:div|p)>', page(response), re.S)
    text = re.sub(r"<[^>]+>|\s+", " ", match.group(1)).strip() if match else "(no alert)"
    return f"{response.status_code}: {text}"


# --- fixtures ------------------------------------------------------------------------

@pytest.fixture
def deliverable(make_deliverable):
    """A draft with version 1 (homepage.pdf) already uploaded."""
    return make_deliverable(S.DRAFT)


@pytest.fixture
def sam(browser, staff):
    browser.login(staff.email)
    return browser


@pytest.fixture
def small_limit(app_config):
    """A 1 MB upload limit. Request this before any fixture that builds the app."""
    app_config["MAX_UPLOAD_MB"] = 1
    app_config["MAX_CONTENT_LENGTH"] = 1 * MB + 64 * 1024


@pytest.fixture
def pdf_and_png_only(app_config):
    app_config["ACCEPTED_UPLOAD_TYPES"] = "pdf,png"


# --- a successful upload -------------------------------------------------------------

def test_pdf_upload_becomes_the_next_version_and_is_stored_by_hash(app, sam, deliverable, staff):
    content = sample_pdf("Homepage v3, second cut")
    digest = hashlib.sha256(content).hexdigest()
    assert [v.number for v in versions_of(deliverable.id)] == [1]

    response = upload(sam, deliverable.id, content, "homepage-v2.pdf", "  Bigger headline  ")

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/deliverables/{deliverable.id}")
    numbers = [v.number for v in versions_of(deliverable.id)]
    assert numbers == [1, 2]
    version = versions_of(deliverable.id)[-1]
    assert version.file_name == "homepage-v2.pdf"
    assert version.media_type == "application/pdf"
    assert version.size == len(content)
    assert version.sha256 == digest
    assert version.storage_key == digest
    assert version.what_changed == "Bigger headline"
    assert version.uploaded_by_id == staff.id
    assert deliverable.current_version.id == version.id

    path = stored_path(app, digest)
    assert path.is_file()
    assert path.read_bytes() == content

    shown = page(sam.get(f"/deliverables/{deliverable.id}"))
    assert "New version uploaded." in shown
    assert "Version 2" in shown and "homepage-v2.pdf" in shown and digest in shown

    download = sam.get(f"/versions/{version.id}/file")
    assert download.status_code == 200
    assert download.data == content
    assert download.mimetype == "application/pdf"
    assert "homepage-v2.pdf" in download.headers["Content-Disposition"]


def test_same_bytes_uploaded_twice_are_stored_once(app, sam, deliverable):
    content = sample_pdf("Identical twice")
    digest = hashlib.sha256(content).hexdigest()
    before = stored_files(app)

    assert upload(sam, deliverable.id, content, "a.pdf", "first").status_code == 302
    assert upload(sam, deliverable.id, content, "b.pdf", "same file again").status_code == 302

    versions = versions_of(deliverable.id)
    assert [v.number for v in versions] == [1, 2, 3]
    assert [v.file_name for v in versions[1:]] == ["a.pdf", "b.pdf"]
    assert {v.storage_key for v in versions[1:]} == {digest}
    assert stored_files(app) - before - preview_files(app) == {
        str(stored_path(app, digest).relative_to(store_root(app)))}
    # Its previews too: the same page makes the same images, stored once.
    twins = db.session.scalars(select(PageRender).where(
        PageRender.version_id.in_([v.id for v in versions[1:]]))).all()
    assert len(twins) == 2 and twins[0].display_key == twins[1].display_key


def test_upload_to_a_ready_deliverable_sends_it_back_to_draft(sam, make_deliverable):
    d = make_deliverable(S.READY)
    assert upload(sam, d.id, sample_pdf("After review"), "after.pdf").status_code == 302
    db.session.refresh(d)
    assert d.state == S.DRAFT
    assert d.reviewer is None
    assert [v.number for v in versions_of(d.id)] == [1, 2]


# --- the size limit ------------------------------------------------------------------

def test_body_over_the_request_limit_gets_413_and_nothing_is_stored(
        small_limit, app, sam, deliverable):
    assert app.config["MAX_CONTENT_LENGTH"] == MB + 64 * 1024
    before = stored_files(app)

    response = upload(sam, deliverable.id, pdf_of_size(2 * MB), "huge.pdf")

    assert response.status_code == 413
    text = page(response)
    assert "File too large" in text
    assert "1 MB limit" in text
    assert [v.number for v in versions_of(deliverable.id)] == [1]
    assert_nothing_new_stored(app, before)


def test_file_just_over_the_upload_limit_gets_413_and_nothing_is_stored(
        small_limit, app, sam, deliverable):
    assert app.config["MAX_UPLOAD_MB"] == 1
    before = stored_files(app)
    content = pdf_of_size(MB + 1)  # the whole request stays under MAX_CONTENT_LENGTH

    response = upload(sam, deliverable.id, content, "just-over.pdf", "Slightly too big")

    assert response.status_code == 413
    text = page(response)
    assert "1 MB limit" in text
    assert "Slightly too big" in text  # the form comes back as the user left it
    assert [v.number for v in versions_of(deliverable.id)] == [1]
    assert_nothing_new_stored(app, before)


def test_file_of_exactly_the_limit_is_accepted(small_limit, app, sam, deliverable):
    content = pdf_of_size(MB)
    response = upload(sam, deliverable.id, content, "exactly.pdf")
    assert response.status_code == 302
    version = versions_of(deliverable.id)[-1]
    assert (version.number, version.size) == (2, MB)
    digest = hashlib.sha256(content).hexdigest()
    assert (stored_path(app, digest)).read_bytes() == content


# --- types are judged by content -----------------------------------------------------

@pytest.mark.parametrize(("content", "name", "media_type"), [
    pytest.param(SVG, "logo.svg", "image/svg+xml", id="svg"),
    pytest.param(SVG_WITH_DOCTYPE, "logo.svg", "image/svg+xml", id="svg-doctype"),
    pytest.param(SVG_FROM_ILLUSTRATOR, "logo.svg", "image/svg+xml",
                 id="svg-doctype-internal-subset"),
    pytest.param(office_file("word/document.xml"), "brief.docx", WORD, id="docx"),
    pytest.param(plain_zip(), "assets.zip", "application/zip", id="zip"),
    pytest.param(sample_png(), "hero.png", "image/png", id="png"),
])
def test_accepted_types_are_stored_with_their_media_type(app, sam, deliverable, content, name,
                                                        media_type):
    response = upload(sam, deliverable.id, content, name)
    assert response.status_code == 302, alert(response)
    version = versions_of(deliverable.id)[-1]
    assert (version.number, version.file_name, version.media_type) == (2, name, media_type)
    digest = hashlib.sha256(content).hexdigest()
    assert (stored_path(app, digest)).read_bytes() == content


@pytest.mark.parametrize(("content", "name", "status", "message"), [
    pytest.param(sample_png(), "photo.pdf", 415,
                 "“photo.pdf” contains a PNG image, but its name does not end in .png",
                 id="png-named-pdf"),
    pytest.param(b"Just some notes, not a PDF at all.\n", "notes.pdf", 415,
                 "“notes.pdf” is not a file type we accept", id="text-named-pdf"),
    pytest.param(office_file("xl/workbook.xml"), "budget.docx", 415,
                 "“budget.docx” contains a Excel workbook, but its name does not end in .xlsx",
                 id="xlsx-named-docx"),
    pytest.param(b"<html><body>svg-ish</body></html>", "fake.svg", 415,
                 "“fake.svg” is not a file type we accept", id="html-named-svg"),
    pytest.param(b"", "empty.pdf", 422, "The file is empty.", id="empty"),
])
def test_refused_files_leave_no_version_and_no_file(app, sam, deliverable, content, name, status,
                                                    message):
    before = stored_files(app)
    response = upload(sam, deliverable.id, content, name)
    assert response.status_code == status
    assert message in page(response)
    assert [v.number for v in versions_of(deliverable.id)] == [1]
    assert_nothing_new_stored(app, before)


def test_no_file_chosen_is_refused(app, sam, deliverable):
    response = sam.post(f"/deliverables/{deliverable.id}/versions",
                        data={"what_changed": "Forgot the file"},
                        content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Choose a file to upload." in page(response)
    assert [v.number for v in versions_of(deliverable.id)] == [1]


def test_a_type_left_out_of_the_accepted_setting_is_refused(pdf_and_png_only, app, sam,
                                                            deliverable):
    before = stored_files(app)
    response = upload(sam, deliverable.id, SVG, "logo.svg")
    assert response.status_code == 415
    text = page(response)
    assert "“logo.svg” is not a file type we accept" in text
    assert "Accepted: PDF, PNG image." in text
    assert [v.number for v in versions_of(deliverable.id)] == [1]
    assert_nothing_new_stored(app, before)
    # The types still on the list go through.
    assert upload(sam, deliverable.id, sample_png(), "hero.png").status_code == 302
    assert versions_of(deliverable.id)[-1].media_type == "image/png"


# --- file names ----------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "shown"), [
    pytest.param("../../etc/passwd.pdf", "passwd.pdf", id="relative-traversal"),
    pytest.param("/etc/passwd.pdf", "passwd.pdf", id="absolute-path"),
    pytest.param(".hidden.pdf", "hidden.pdf", id="leading-dot"),
    pytest.param("bad\x07name\x1f.pdf", "bad_name_.pdf", id="control-characters"),
    pytest.param("  ../.. /..report.pdf", "report.pdf", id="dots-and-spaces"),
])
def test_file_names_are_cleaned_and_nothing_is_written_outside_the_store(
        app, sam, deliverable, tmp_path, raw, shown):
    content = sample_pdf(f"Named {shown}")
    digest = hashlib.sha256(content).hexdigest()
    store = store_root(app).resolve()
    # tmp_path's parent also holds this session's SQLite database and every other test's
    # directory: anything "../" could reach from inside the store.
    outside = tmp_path.parent
    before = {f for f in all_files(outside)
              if not (outside / f).resolve().is_relative_to(store)}

    response = upload(sam, deliverable.id, content, raw)

    assert response.status_code == 302, alert(response)
    version = versions_of(deliverable.id)[-1]
    assert version.file_name == shown
    assert not re.search(r"[\x00-\x1f\x7f/\\]", version.file_name)
    after = {f for f in all_files(outside)
             if not (outside / f).resolve().is_relative_to(store)}
    assert after == before
    assert not (outside / "etc").exists()
    assert str(stored_path(app, digest).relative_to(store_root(app))) in stored_files(app)
    for name in stored_files(app):
        assert re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}", name), name
    assert shown in page(sam.get(f"/deliverables/{deliverable.id}"))


@pytest.mark.parametrize("raw", [
    pytest.param("bad\x85name\x9b.pdf", id="c1-control-characters"),
    pytest.param("bad\u202ename\u202c.pdf", id="bidi-override"),
])
def test_unicode_control_characters_are_cleaned_from_names(app, sam, deliverable, raw):
    response = upload(sam, deliverable.id, sample_pdf("Unicode name"), raw)

    assert response.status_code == 302, alert(response)
    name = versions_of(deliverable.id)[-1].file_name
    assert name.startswith("bad") and "name" in name and name.endswith(".pdf")
    assert not [c for c in name if unicodedata.category(c) == "Cc"], repr(name)
    assert not [c for c in name if c in BIDI_CONTROLS], repr(name)


def test_long_names_are_shortened_but_keep_their_extension(app, sam, deliverable):
    raw = "homepage-" + "x" * 300 + ".pdf"
    response = upload(sam, deliverable.id, sample_pdf("Long name"), raw)
    assert response.status_code == 302, alert(response)
    name = versions_of(deliverable.id)[-1].file_name
    assert name.startswith("homepage-xxx") and name.endswith(".pdf")
    assert len(name) <= 200


def test_names_are_unicode_normalised(app, sam, deliverable):
    response = upload(sam, deliverable.id, sample_pdf("Cafe"), "cafe\u0301 menu.pdf")
    assert response.status_code == 302, alert(response)
    assert versions_of(deliverable.id)[-1].file_name == "caf\u00e9 menu.pdf"


# --- who and when --------------------------------------------------------------------

def test_finance_cannot_upload(app, browser, make_user, deliverable):
    finance = make_user(Role.FINANCE)
    browser.login(finance.email)
    before = stored_files(app)

    response = upload(browser, deliverable.id, sample_pdf("From finance"), "invoice.pdf")

    assert response.status_code == 403
    assert "cannot change work" in page(response)
    assert [v.number for v in versions_of(deliverable.id)] == [1]
    assert_nothing_new_stored(app, before)


def test_upload_while_delivered_is_refused_and_nothing_is_stored(app, sam, make_deliverable):
    d = make_deliverable(S.DELIVERED)
    before = stored_files(app)

    response = upload(sam, d.id, sample_pdf("Too late"), "late.pdf")

    assert response.status_code == 409
    assert "A request is out with the client" in page(response)
    db.session.refresh(d)
    assert d.state == S.DELIVERED
    assert [v.number for v in versions_of(d.id)] == [1]
    assert_nothing_new_stored(app, before)


def test_failed_upload_shows_the_page_with_the_error_and_keeps_what_changed(
        app, sam, deliverable):
    response = upload(sam, deliverable.id, b"plain text, not a document\n", "draft.pdf",
                      "Swapped the hero image for the approved one")

    assert response.status_code == 415
    text = page(response)
    assert f"<h1>{deliverable.title}</h1>" in text
    assert re.search(r'role="alert">\s*<p>“draft.pdf” is not a file type we accept', text)
    assert re.search(r'<textarea id="what_changed"[^>]*>Swapped the hero image for the approved '
                     r'one</textarea>', text)
    assert "New version uploaded." not in text
    db.session.refresh(deliverable)
    assert deliverable.state == S.DRAFT
    assert [v.number for v in versions_of(deliverable.id)] == [1]
