"""Approval certificates: issued once on approval, sealed, verifiable by anyone, safe to
render, readable by finance, and downloadable by the client whose approval it records."""
from __future__ import annotations

import base64
import csv
import hashlib
import inspect
import io
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pypdf import PdfReader
from sqlalchemy import func, select

import jobs.certificates
import jobs.periodic
from portal import workflow
from portal.certificates import (
    Verdict,
    by_public_id,
    create_development_key,
    issue_certificate,
    requests_missing_certificates,
    verify_id,
    verify_pdf,
)
from portal.certificates import claim as claim_module
from portal.certificates import verify as verify_module
from portal.certificates.claim import claimed_id
from portal.certificates.render import PortalOnlyFetcher, html_to_pdf
from portal.certificates.seal import check_seal, seal_pdf
from portal.demo.samples import sample_pdf, sample_png
from portal.extensions import db
from portal.files.storage import file_store
from portal.models import (
    AuditEvent,
    Certificate,
    Client,
    Decision,
    Deliverable,
    DeliverableState,
    Outcome,
    PageRender,
    Policy,
    RequestStatus,
    ReviewRequest,
    Role,
)
from portal.workflow import policies
from portal.workflow.comments import post_comment
from portal.workflow.links import issue_token
from tests.conftest import IN_CI, SpyServer, future, on_screen, stored_path
from tests.hostile_pdfs import text_bomb_pdf

S = DeliverableState
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "certificates"
STATIC = ROOT / "static"
CONDITIONS = "Swap the logo for the 2025 one before print."


# --- fixtures -----------------------------------------------------------------------

@pytest.fixture(scope="session")
def dev_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One development seal for the whole session (RSA-3072 takes a moment)."""
    return create_development_key(tmp_path_factory.mktemp("seal"), "Signoff test seal")


@pytest.fixture(scope="session")
def next_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The key an operator rotates to later."""
    return create_development_key(tmp_path_factory.mktemp("next-seal"), "Signoff next seal")


@pytest.fixture(autouse=True)
def _no_signing_key_by_default(app_config: dict[str, Any]) -> None:
    """create_app falls back to instance/signing/, which a developer's `certs init` fills:
    tests here say explicitly whether there is a key."""
    app_config.update(SIGNING_KEY="", SIGNING_CERT="", SIGNING_PKCS12="")


@pytest.fixture
def signing(app_config: dict[str, Any], dev_key: tuple[Path, Path]) -> dict[str, str]:
    """The development key; request this before anything that builds `app`."""
    key, cert = dev_key
    settings = {"SIGNING_KEY": str(key), "SIGNING_CERT": str(cert), "SIGNING_PKCS12": ""}
    app_config.update(settings)
    return settings


@pytest.fixture
def spy_server():
    server = SpyServer()
    yield server
    server.stop()


# --- helpers --------------------------------------------------------------------------

def _request_of(d: Deliverable) -> ReviewRequest:
    db.session.refresh(d)
    return d.requests[0]


def _certificates() -> list[Certificate]:
    return list(db.session.scalars(select(Certificate).order_by(Certificate.id)))


def _stored_pdf(app, certificate: Certificate) -> bytes:
    key = certificate.storage_key
    path = stored_path(app, key)
    assert path.is_file(), path
    return path.read_bytes()


def _pages(pdf: bytes) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages]


def _text(pdf: bytes) -> str:
    return "\n".join(_pages(pdf))


def _squash(text: str) -> str:
    """Table cells wrap long strings over lines; compare without any whitespace."""
    return re.sub(r"\s+", "", text)


def _embedded_files(pdf: bytes) -> Any:
    reader = PdfReader(io.BytesIO(pdf))
    names = reader.trailer["/Root"].get("/Names")
    names = names.get_object() if names is not None else {}
    return names.get("/EmbeddedFiles"), reader.attachments


def _approve(d: Deliverable, *choices: tuple[Outcome, str], user_agent: str = "") -> ReviewRequest:
    """Each approver decides in turn; committing runs the certificate job (sync queue)."""
    request = _request_of(d)
    for approver, (outcome, text) in zip(request.approvers, choices, strict=True):
        workflow.record_decision(approver, outcome, text, ip="203.0.113.7",
                                 user_agent=user_agent or "Mozilla/5.0 (Test)",
                                 seen_sha256=on_screen(approver))
    db.session.commit()
    db.session.expire_all()
    return _request_of(d)


def _issued(make_client, make_project, make_deliverable, *, timezone: str = "UTC"):
    """A delivered deliverable, two approvers: one approves, one with conditions."""
    client = make_client(name="Acme Brandworks GmbH")
    client.timezone = timezone
    db.session.commit()
    d = make_deliverable(S.DELIVERED, project=make_project(client), approvers=2)
    request = _approve(d, (Outcome.APPROVED, ""),
                       (Outcome.APPROVED_WITH_CONDITIONS, CONDITIONS))
    assert request.status == RequestStatus.APPROVED_WITH_CONDITIONS
    return request


def _upload(browser, pdf: bytes, name: str = "certificate.pdf"):
    return browser.post("/verify", {"file": (io.BytesIO(pdf), name)},
                        content_type="multipart/form-data")


def _flip_inside(pdf: bytes) -> bytes:
    """Change one byte in the middle of the first page's (compressed) content stream."""
    reader = PdfReader(io.BytesIO(pdf))
    ref = reader.pages[0].raw_get("/Contents")
    ref = ref[0] if isinstance(ref, list) else ref
    offset = reader.xref[ref.generation][ref.idnum]
    start = pdf.index(b"stream", offset) + len(b"stream")
    found = re.search(rb"/Length (\d+)", pdf[offset:start])
    assert found, pdf[offset:start]
    length = int(found.group(1))
    start += 2 if pdf[start:start + 2] == b"\r\n" else 1
    assert length > 100
    at = start + length // 2
    assert at < len(pdf) - 4096, "the flipped byte must sit well inside the file"
    changed = bytearray(pdf)
    changed[at] ^= 0x01
    return bytes(changed)


# --- issuing on approval --------------------------------------------------------------

@pytest.mark.parametrize("state", [S.APPROVED, S.APPROVED_WITH_CONDITIONS])
def test_approval_issues_exactly_one_stored_certificate(signing, app, make_deliverable, state):
    d = make_deliverable(state, approvers=2)
    request = _request_of(d)

    certificates = _certificates()
    assert len(certificates) == 1
    certificate = certificates[0]
    assert certificate.request_id == request.id
    assert re.fullmatch(r"SO-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", certificate.public_id)

    pdf = _stored_pdf(app, certificate)
    digest = hashlib.sha256(pdf).hexdigest()
    assert certificate.pdf_sha256 == digest
    assert certificate.storage_key == digest  # content-addressed under its own sha256
    assert certificate.size == len(pdf)
    assert pdf.startswith(b"%PDF-")

    issued = list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.verb == "certificate.issued")))
    assert len(issued) == 1
    assert issued[0].deliverable_id == d.id and issued[0].actor == "system"
    assert certificate.public_id in issued[0].detail and digest in issued[0].detail


def test_certificate_text_records_what_who_and_when(signing, app, make_client, make_project,
                                                     make_deliverable):
    request = _issued(make_client, make_project, make_deliverable, timezone="Europe/Berlin")
    certificate = request.certificate
    assert certificate is not None
    text = _text(_stored_pdf(app, certificate))
    words = " ".join(text.split())  # table cells wrap; compare word sequences

    assert certificate.public_id in text
    assert request.version.sha256 in _squash(text)
    assert ("Acme Brandworks GmbH approved with conditions version 1 of Homepage v3 "
            "(Project for Acme Brandworks GmbH)") in words
    for label, value in (("Client", "Acme Brandworks GmbH"),
                         ("Project", "Project for Acme Brandworks GmbH"),
                         ("Deliverable", "Homepage v3"), ("Version", "1 — First cut"),
                         ("File", "homepage.pdf (592 bytes, application/pdf)"),
                         ("SHA-256", request.version.sha256)):
        assert f"{label} {value}" in words, label
    # The approval policy in the same words as the staff pages (workflow/policies.describe).
    assert f"Approval {policies.describe(request)}" in words

    berlin = ZoneInfo("Europe/Berlin")
    decided = [("approved", ""), ("approved with conditions", f" Conditions: {CONDITIONS}")]
    for approver, (label, extra) in zip(request.approvers, decided, strict=True):
        at = approver.decision.at
        local = at.astimezone(berlin).strftime("%Y-%m-%d %H:%M %Z")
        assert local.endswith(("CET", "CEST"))
        row = (f"{approver.contact.name} {approver.contact.email} Identified by a personal link "
               f"emailed to this address {label}{extra} {at:%Y-%m-%d %H:%M:%S} UTC {local}")
        assert row in words, row
    assert "Client approved with conditions Contact 1.2" in words  # the timeline


def test_a_plain_approval_says_approved_and_no_local_time_for_utc_clients(
        signing, app, make_deliverable):
    d = make_deliverable(S.APPROVED, approvers=1)
    request = _request_of(d)
    text = _text(_stored_pdf(app, request.certificate))

    assert "approved version 1 of Homepage v3" in " ".join(text.split())
    assert "with conditions" not in text
    assert not re.search(r"\d{2}:\d{2} CES?T\b", text)  # no local time for UTC clients


def test_seal_is_pades_and_valid_for_pyhanko(signing, app, make_deliverable):
    d = make_deliverable(S.APPROVED)
    pdf = _stored_pdf(app, _request_of(d).certificate)

    check = check_seal(pdf, app.config)
    assert check.valid is True, check.detail

    # The same, independently of the app's own helper.
    reader = PdfFileReader(io.BytesIO(pdf))
    assert len(reader.embedded_signatures) == 1
    signature = reader.embedded_signatures[0]
    ours = load_cert_from_pemder(signing["SIGNING_CERT"])
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=[ours]))
    assert status.intact and status.valid and status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert status.signing_cert.sha256 == ours.sha256
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert b"/ETSI.CAdES.detached" in pdf


# --- verifying ------------------------------------------------------------------------

def test_one_changed_byte_is_caught_and_the_original_is_genuine(signing, app,
                                                                 make_deliverable, make_browser):
    d = make_deliverable(S.APPROVED)
    certificate = _request_of(d).certificate
    pdf = _stored_pdf(app, certificate)
    altered = _flip_inside(pdf)
    assert len(altered) == len(pdf) and altered != pdf

    assert verify_pdf(pdf).verdict == Verdict.GENUINE
    assert verify_pdf(pdf).certificate.id == certificate.id
    result = verify_pdf(altered)
    assert result.verdict == Verdict.ALTERED
    assert result.certificate is not None and result.certificate.id == certificate.id
    assert check_seal(altered, app.config).valid is False

    anonymous = make_browser()  # nobody signs in to verify
    page = _upload(anonymous, altered)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "This file was altered after it was issued" in html
    assert certificate.public_id in html and "Genuine" not in html

    page = _upload(anonymous, pdf)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Genuine" in html and "version 1 of “Homepage v3”" in html
    assert certificate.public_id in html and "altered" not in html

    page = _upload(anonymous, sample_pdf("Some other PDF"), "other.pdf")
    assert "No such certificate" in page.get_data(as_text=True)
    assert "Genuine" not in page.get_data(as_text=True)

    # An id alone: the certificate exists and what it records; no file was checked, so
    # nothing is called genuine (tests/test_certificate_words.py has the record itself).
    page = anonymous.post("/verify", {"certificate_id": certificate.public_id.lower()})
    html = page.get_data(as_text=True)
    assert f"{certificate.public_id}</span> exists" in html and "Genuine" not in html

    for unknown in ("SO-ABCD-EFGH-JKLM", "not an id"):
        page = anonymous.post("/verify", {"certificate_id": unknown})
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "No such certificate" in html and "Genuine" not in html

    link = anonymous.get(f"/verify/{certificate.public_id}")  # what the QR code opens
    html = link.get_data(as_text=True)
    assert link.status_code == 200
    assert f"{certificate.public_id}</span> exists" in html and "Genuine" not in html
    assert "version 1 of “Homepage v3”" in html
    assert "No such certificate" in anonymous.get("/verify/SO-ABCD-EFGH-JKLM").get_data(
        as_text=True)


def test_a_genuine_certificate_is_not_called_altered_after_a_key_change(
        signing, app, make_deliverable, make_browser, next_key):
    """Rotating the seal key (or losing its config) does not make the untouched, stored
    file of an earlier certificate "altered after it was issued"."""
    d = make_deliverable(S.APPROVED)
    certificate = _request_of(d).certificate
    pdf = _stored_pdf(app, certificate)
    assert verify_pdf(pdf).verdict == Verdict.GENUINE
    anonymous = make_browser()

    called_altered = {}
    for change, cert in (("rotated", str(next_key[1])), ("removed", "")):
        app.config.update(SIGNING_KEY=str(next_key[0]) if cert else "", SIGNING_CERT=cert)
        html = anonymous.get(f"/verify/{certificate.public_id}").get_data(as_text=True)
        called_altered[change] = (verify_pdf(pdf).verdict == Verdict.ALTERED,
                                  "This file was altered after it was issued" in html)
    assert called_altered == {"rotated": (False, False), "removed": (False, False)}


def test_the_qr_link_is_printed_on_the_certificate(signing, app, make_deliverable):
    d = make_deliverable(S.APPROVED)
    certificate = _request_of(d).certificate
    text = _squash(_text(_stored_pdf(app, certificate)))
    assert f"http://portal.test/verify/{certificate.public_id}" in text


def test_the_certificate_names_its_id_in_its_document_information(signing, app,
                                                                    make_deliverable):
    """/verify finds the id of an upload there, never on a page."""
    d = make_deliverable(S.APPROVED)
    certificate = _request_of(d).certificate
    pdf = _stored_pdf(app, certificate)
    info = PdfReader(io.BytesIO(pdf)).metadata
    assert info["/Keywords"] == certificate.public_id
    assert info["/Title"] == f"Approval certificate {certificate.public_id}"
    assert claimed_id(pdf) == certificate.public_id


def test_an_upload_is_judged_by_its_hash_and_document_information_never_its_pages(
        signing, app, make_deliverable, make_browser):
    d = make_deliverable(S.APPROVED)
    certificate = _request_of(d).certificate
    public_id = certificate.public_id

    # The id drawn on a page is not looked for: no page of an upload is interpreted.
    drawn = sample_pdf(f"Approval certificate {public_id}")
    assert public_id in _squash(_text(drawn))
    assert verify_pdf(drawn).verdict == Verdict.UNKNOWN

    # A text bomb's pages cost nothing; its document information names the certificate.
    bomb = text_bomb_pdf(title=f"Approval certificate {public_id}")
    result = verify_pdf(bomb)
    assert result.verdict == Verdict.ALTERED and result.certificate.id == certificate.id
    page = _upload(make_browser(), bomb, "statement.pdf")
    assert page.status_code == 200
    assert "This file was altered after it was issued" in page.get_data(as_text=True)
    assert verify_pdf(text_bomb_pdf()).verdict == Verdict.UNKNOWN

    # Nothing on the verify path can extract text: neither module uses a PDF library.
    for module in (verify_module, claim_module):
        assert "pypdf" not in inspect.getsource(module)


def test_a_certificate_issued_before_its_id_was_in_the_keywords_still_verifies(
        signing, app, make_deliverable, make_browser):
    """Earlier certificates carried the id in /Title only: they verify by their stored
    SHA-256, and an altered copy is named by its title."""
    d = make_deliverable(S.APPROVED)
    certificate = _request_of(d).certificate
    public_id = certificate.public_id
    html = (f"<title>Approval certificate {public_id}</title><h1>Approval certificate</h1>"
            f"<p>{public_id}</p>" + "<p>Approved by Jane Doe on 2026-11-20.</p>" * 30)
    legacy = seal_pdf(html_to_pdf(html, ROOT / "static"), app.config,
                      reason=f"Approval certificate {public_id}")
    assert "/Keywords" not in PdfReader(io.BytesIO(legacy)).metadata
    certificate.storage_key = file_store().put_bytes(legacy)
    certificate.pdf_sha256 = hashlib.sha256(legacy).hexdigest()
    db.session.commit()

    assert verify_pdf(legacy).verdict == Verdict.GENUINE
    assert verify_id(public_id).verdict == Verdict.ON_RECORD
    altered = verify_pdf(_flip_inside(legacy))
    assert altered.verdict == Verdict.ALTERED and altered.certificate.id == certificate.id
    assert "Genuine" in _upload(make_browser(), legacy).get_data(as_text=True)


def test_no_transaction_is_open_while_a_pdf_is_parsed(signing, app, make_deliverable,
                                                      make_browser, monkeypatch):
    """A held transaction pins a pooled connection, and on SQLite the write lock."""
    d = make_deliverable(S.APPROVED)
    certificate = _request_of(d).certificate
    pdf = _stored_pdf(app, certificate)
    parsed: list[tuple[str, bool]] = []

    def spy(name: str, real):
        def parse(*args, **kwargs):
            parsed.append((name, db.session().in_transaction()))
            return real(*args, **kwargs)
        return parse

    monkeypatch.setattr(verify_module, "claimed_id", spy("claim", verify_module.claimed_id))
    monkeypatch.setattr(verify_module, "check_seal", spy("seal", verify_module.check_seal))
    assert db.session().in_transaction()  # the caller has just read: verification ends it
    assert verify_pdf(pdf).verdict == Verdict.GENUINE
    assert verify_pdf(_flip_inside(pdf)).verdict == Verdict.ALTERED
    assert verify_id(certificate.public_id).verdict == Verdict.ON_RECORD  # parses nothing
    assert "Genuine" in _upload(make_browser(), pdf).get_data(as_text=True)
    assert parsed == [("claim", False), ("seal", False), ("claim", False),
                      ("claim", False), ("seal", False)]

    certificate.size += 1  # unsaved work is never rolled back behind the caller's back
    with pytest.raises(RuntimeError, match="commit your changes first"):
        verify_pdf(pdf)
    db.session.rollback()


def test_verify_form_needs_no_sign_in(app, make_browser):
    page = make_browser().get("/verify")
    assert page.status_code == 200
    assert "Verify an approval certificate" in page.get_data(as_text=True)


def test_an_upload_over_the_verify_limit_gets_413(app, make_browser):
    assert app.config["VERIFY_MAX_MB"] == 10
    app.config["VERIFY_MAX_MB"] = 1
    anonymous = make_browser()

    big = _upload(anonymous, b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024))
    assert big.status_code == 413
    assert "larger than 1 MB" in big.get_data(as_text=True)

    just_over = _upload(anonymous, b"%PDF-1.4\n" + b"0" * (1024 * 1024))
    assert just_over.status_code == 413
    assert "too large to be one of our certificates" in just_over.get_data(as_text=True)

    small = _upload(anonymous, sample_pdf("Small"))
    assert small.status_code == 200


def test_verify_posts_are_rate_limited(app, make_browser):
    app.config["VERIFY_RATE_LIMIT"] = "3 per minute"
    anonymous = make_browser()
    for _ in range(3):
        ok = anonymous.post("/verify", {"certificate_id": "SO-ABCD-EFGH-JKLM"})
        assert ok.status_code == 200
    blocked = anonymous.post("/verify", {"certificate_id": "SO-ABCD-EFGH-JKLM"})
    assert blocked.status_code == 429
    assert "No such certificate" not in blocked.get_data(as_text=True)


# --- rendering user text safely -------------------------------------------------------

def _payload(port: int) -> str:
    return (f'<link rel=attachment href="file:///etc/passwd">'
            f'<img src="http://127.0.0.1:{port}/x.png"><script>alert(1)</script>')


def _assert_nothing_fetched_or_embedded(pdf: bytes, spy: SpyServer) -> None:
    embedded, attachments = _embedded_files(pdf)
    assert embedded is None and attachments == {}
    assert b"root:x:0:0" not in pdf
    for page in PdfReader(io.BytesIO(pdf)).pages:
        contents = page.get_contents()
        assert b"root:x:0:0" not in (contents.get_data() if contents is not None else b"")
    assert spy.paths == []


def test_user_text_is_printed_as_text_and_fetches_nothing(signing, app, staff, colleague,
                                                          make_project, spy_server):
    payload = _payload(spy_server.port)
    project = make_project()
    d = workflow.create_deliverable(staff, project, "Brochure " + payload[:60], payload,
                                    future(14))
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf("Brochure")), "brochure.pdf",
                            payload)
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True, note=payload)
    request = workflow.deliver(staff, d, project.client.contacts[:1], Policy.PARALLEL, future(7))
    post_comment(project.client.contacts[0], request, payload,
                 seen_sha256=request.version.sha256)
    db.session.commit()
    request = _approve(d, (Outcome.APPROVED_WITH_CONDITIONS, payload), user_agent=payload)

    assert request.certificate is not None
    pdf = _stored_pdf(app, request.certificate)
    flat = _squash(_text(pdf))
    # Printed literally wherever it was typed: conditions, what changed, review note, browser.
    for where in (f"Conditions: {payload}", f"Version 1 — {payload}",
                  f"Cora Colleague (cora@agency.example) on {request.sent_at:%Y-%m-%d}"):
        assert _squash(where) in flat, where
    assert _squash(f"“{payload}”") in flat  # the review note
    assert flat.count(_squash(payload)) == 4
    assert _squash("Brochure " + payload[:60]) in flat  # the title
    _assert_nothing_fetched_or_embedded(pdf, spy_server)
    assert check_seal(pdf, app.config).valid


def test_the_fetcher_blocks_raw_tags_but_allows_data_urls_and_static_files(app, spy_server):
    png = base64.b64encode(sample_png(8, 8)).decode()
    html = (
        "<!doctype html><html><head>"
        '<link rel="stylesheet" href="css/certificate.css">'
        '<link rel="stylesheet" href="file:///etc/passwd">'
        '<link rel="attachment" href="file:///etc/passwd">'
        '<link rel="attachment" href="../../../../../../etc/passwd">'
        f'<link rel="attachment" href="http://127.0.0.1:{spy_server.port}/a.bin">'
        "</head><body><h1>Fetch test</h1>"
        f'<img src="http://127.0.0.1:{spy_server.port}/x.png">'
        '<img src="file:///etc/passwd">'
        f'<img src="data:image/png;base64,{png}" alt="inline">'
        "<script>document.write('scripted')</script>"
        "</body></html>"
    )
    pdf = html_to_pdf(html, STATIC)

    _assert_nothing_fetched_or_embedded(pdf, spy_server)
    text = _text(pdf)
    assert "Fetch test" in text and "scripted" not in text
    # The static stylesheet was loaded: its page footer is there.
    assert "Page 1 of 1" in text
    # The data: image was drawn.
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    xobjects = page["/Resources"].get_object().get("/XObject")
    images = [x for x in (xobjects.get_object().values() if xobjects else [])
              if x.get_object().get("/Subtype") == "/Image"]
    assert len(images) == 1

    fetcher = PortalOnlyFetcher(STATIC)
    css = fetcher.fetch((STATIC / "css" / "certificate.css").resolve().as_uri())
    for blocked in ("file:///etc/passwd", f"http://127.0.0.1:{spy_server.port}/x.png",
                    (STATIC / ".." / "portal" / "config.py").resolve().as_uri(),
                    "file://localhost/etc/passwd"):
        with pytest.raises(ValueError, match="blocked fetch"):
            fetcher.fetch(blocked)
    assert css is not None
    assert spy_server.paths == []


# --- issuing is idempotent, and waits for a key ---------------------------------------

def test_issuing_again_returns_the_same_certificate(signing, app, make_deliverable):
    d = make_deliverable(S.APPROVED)
    request = _request_of(d)
    first = request.certificate
    assert first is not None
    public_id, sha = first.public_id, first.pdf_sha256

    again = issue_certificate(request.id)
    db.session.commit()
    assert again is not None and again.public_id == public_id
    assert jobs.certificates.issue(request.id) == public_id

    certificates = _certificates()
    assert [(c.public_id, c.pdf_sha256) for c in certificates] == [(public_id, sha)]
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.verb == "certificate.issued")) == 1
    assert by_public_id(public_id.lower()).id == first.id
    # Nothing was rendered again: the store holds the approved file (and its page preview)
    # and one certificate.
    store = Path(app.config["FILE_STORE"])
    files = {p.name for p in store.rglob("*") if p.is_file() and "incoming" not in p.parts}
    preview = db.session.execute(select(PageRender.display_key, PageRender.thumb_key)).one()
    assert files == {request.version.storage_key, first.storage_key, *preview}


def test_without_a_key_approval_works_and_the_sweep_issues_it_later(app, make_deliverable,
                                                                    dev_key):
    assert not app.config["SIGNING_KEY"] and not app.config["SIGNING_PKCS12"]
    d = make_deliverable(S.APPROVED)
    request = _request_of(d)

    assert d.state == S.APPROVED and request.status == RequestStatus.APPROVED
    assert db.session.scalar(select(func.count()).select_from(Decision)) == 1
    assert _certificates() == []
    assert requests_missing_certificates() == [request.id]

    key, cert = dev_key
    app.config.update(SIGNING_KEY=str(key), SIGNING_CERT=str(cert))
    report = jobs.periodic.every_minute()
    db.session.expire_all()

    assert report["certificates_requested"] == 1
    certificates = _certificates()
    assert len(certificates) == 1 and certificates[0].request_id == request.id
    assert requests_missing_certificates() == []
    assert verify_pdf(_stored_pdf(app, certificates[0])).verdict == Verdict.GENUINE
    assert jobs.periodic.every_minute()["certificates_requested"] == 0


# --- a long audit trail ---------------------------------------------------------------

def test_a_long_audit_trail_paginates_with_page_numbers(report, signing, app, make_deliverable):
    d = make_deliverable(S.DELIVERED)
    request = _request_of(d)
    contact = request.approvers[0].contact
    for n in range(1, 296):
        post_comment(contact, request, f"Comment number {n}",
                     seen_sha256=request.version.sha256)
    db.session.commit()
    request = _approve(d, (Outcome.APPROVED, ""))
    events = list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.deliverable_id == d.id,
                                 AuditEvent.verb != "certificate.issued")
        .order_by(AuditEvent.seq)))
    assert len(events) >= 300

    pdf = _stored_pdf(app, request.certificate)
    pages = _pages(pdf)
    total = len(pages)
    assert total > 2
    assert f"Page 1 of {total}" in pages[0]
    assert f"Page {total} of {total}" in pages[-1]
    flat = _squash("\n".join(pages))
    first, last = events[0], events[-1]
    assert first.verb == "deliverable.created" and last.verb == "request.approved"
    for event in (first, last):
        assert _squash(f"{event.seq}{event.at:%Y-%m-%d %H:%M:%S}{event.verb}") in flat, event.verb
        assert event.hash[:16] in flat
    assert "Clientcommentsonthisrequest:295(" in flat

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    backend = db.engine.dialect.name
    source = ARTIFACTS / f"long-trail-{backend}.pdf"
    source.write_bytes(pdf)
    if shutil.which("pdftoppm") is None:
        if IN_CI:
            pytest.fail("pdftoppm is not installed (CI=true requires poppler-utils)")
        report("pdftoppm is not installed: not rendering the first page to PNG")
        return
    prefix = ARTIFACTS / f"long-trail-{backend}-page1"
    png = prefix.with_suffix(".png")
    png.unlink(missing_ok=True)
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", "-singlefile",
                    str(source), str(prefix)], check=True, timeout=60)
    assert png.is_file() and png.stat().st_size > 0
    assert png.read_bytes().startswith(b"\x89PNG")


# --- who may download -----------------------------------------------------------------

def test_signed_in_roles_download_and_only_the_own_client_gets_it(
        signing, app, make_deliverable, make_user, make_browser, count_queries):
    d = make_deliverable(S.DELIVERED)
    request = _request_of(d)

    # The client approves over HTTP; the certificate is issued right after the commit.
    owner = make_browser()
    assert owner.get(f"/r/{issue_token(request.approvers[0])}").status_code == 303
    assert "Download the approval certificate" not in owner.get(owner.review).get_data(as_text=True)
    assert owner.get(f"{owner.review}/certificate").status_code == 404
    decided = owner.post(f"{owner.review}/decision", {"choice": "approve", "confirm": "1"})
    assert decided.status_code == 303, decided.get_data(as_text=True)
    request = _request_of(d)
    certificate = request.certificate
    assert request.status == RequestStatus.APPROVED and certificate is not None
    pdf = _stored_pdf(app, certificate)
    url = f"/certificates/{certificate.public_id}.pdf"
    assert "Download the approval certificate" in owner.get(owner.review).get_data(as_text=True)
    mine = owner.get(f"{owner.review}/certificate")
    assert mine.status_code == 200 and mine.mimetype == "application/pdf"
    assert mine.headers["Content-Disposition"].startswith("attachment")
    assert mine.data == pdf

    for role in (Role.FINANCE, Role.STAFF, Role.ADMIN):
        browser = make_browser()
        browser.login(make_user(role).email)
        with count_queries() as statements:
            response = browser.get(url)
        assert response.status_code == 200, role
        # Who is signed in, and the certificate's file: nothing else per download (SQLite's
        # explicit BEGIN, portal/database.py, is counted too).
        limit = 3 if db.engine.dialect.name == "sqlite" else 2
        assert statements.count <= limit, statements.count
        assert response.mimetype == "application/pdf"
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert certificate.public_id in response.headers["Content-Disposition"]
        assert response.data == pdf
        assert browser.get("/certificates/SO-ABCD-EFGH-JKLM.pdf").status_code == 404
        if role != Role.FINANCE:
            page = browser.get(f"/deliverables/{d.id}").get_data(as_text=True)
            assert f"Certificate {certificate.public_id}" in page

    anonymous = make_browser().get(url)
    assert anonymous.status_code == 302
    assert "/login" in anonymous.headers["Location"]

    # Another client, whose own request has no certificate (yet).
    other = make_deliverable(S.DELIVERED)
    stranger = make_browser()
    assert stranger.get(f"/r/{issue_token(_request_of(other).approvers[0])}").status_code == 303
    assert stranger.get(stranger.review).status_code == 200
    assert stranger.get(f"{stranger.review}/certificate").status_code == 404
    response = stranger.get(url)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert stranger.get(f"{stranger.review}/files/{request.version_id}").status_code == 404
    assert pdf not in (stranger.get(stranger.review).data, stranger.get("/finance").data)


def test_finance_reads_the_list_but_cannot_write(app, make_user, make_browser):
    finance = make_browser()
    finance.login(make_user(Role.FINANCE).email)
    assert finance.get("/finance").status_code == 200
    response = finance.post("/clients/new", {"name": "Globex", "contact_name": "Hank",
                                             "contact_email": "hank@globex.example"})
    assert response.status_code == 403
    assert "can look but cannot change work" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Client)) == 0
    assert make_browser().get("/finance").status_code == 302


# --- the finance list -----------------------------------------------------------------

def _set_closed(request: ReviewRequest, when: datetime) -> None:
    request.closed_at = when
    db.session.commit()


def _finance_browser(make_browser, make_user):
    browser = make_browser()
    browser.login(make_user(Role.FINANCE).email)
    return browser


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment")
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_finance_list_filters_and_exports(signing, app, make_client, make_project,
                                          make_deliverable, make_browser, make_user):
    acme, globex = make_client(name="Acme"), make_client(name="Globex")
    acme_web = make_project(acme)
    acme_web.name = "Acme web"
    db.session.commit()
    acme_print = make_project(acme)
    acme_print.name = "Acme print"
    db.session.commit()
    web = make_deliverable(S.APPROVED_WITH_CONDITIONS, project=acme_web, approvers=2)
    printed = make_deliverable(S.APPROVED, project=acme_print)
    glob = make_deliverable(S.DELIVERED, project=make_project(globex))
    glob_request = _approve(glob, (Outcome.APPROVED, ""))
    open_one = make_deliverable(S.DELIVERED, project=acme_web)  # not approved: never listed
    web_r, print_r = _request_of(web), _request_of(printed)
    _set_closed(web_r, datetime(2025, 1, 31, 23, 30, tzinfo=UTC))
    _set_closed(print_r, datetime(2025, 2, 1, 0, 0, tzinfo=UTC))
    _set_closed(glob_request, datetime(2025, 3, 15, 12, 0, tzinfo=UTC))
    assert all(r.certificate for r in (web_r, print_r, glob_request))
    finance = _finance_browser(make_browser, make_user)

    page = finance.get("/finance")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "3 approved requests" in html
    for r in (web_r, print_r, glob_request):
        assert r.certificate.public_id in html
        assert f"/certificates/{r.certificate.public_id}.pdf" in html
        for approver in r.approvers:
            assert approver.contact.name in html
    for expected in ("Acme", "Globex", "Acme print", "Acme web", "v1", "with conditions"):
        assert expected in html
    assert html.count('href="/certificates/') == 3 and _request_of(open_one).certificate is None

    def listed(query: str) -> set[int]:
        body = finance.get(f"/finance?{query}").get_data(as_text=True)
        return {r.id for r in (web_r, print_r, glob_request)
                if r.certificate.public_id in body}

    assert listed(f"client={acme.id}") == {web_r.id, print_r.id}
    assert listed(f"client={globex.id}") == {glob_request.id}
    assert listed(f"project={acme_print.id}") == {print_r.id}
    assert listed("start=2025-02-01") == {print_r.id, glob_request.id}
    assert listed("end=2025-01-31") == {web_r.id}  # the end day counts in full
    assert listed("start=2025-02-01&end=2025-02-28") == {print_r.id}
    assert listed(f"client={acme.id}&start=2025-03-01") == set()
    assert finance.get("/finance?start=yesterday").status_code == 422

    rows = _csv(finance.get("/finance/export.csv"))
    header, body = rows[0], rows[1:]
    assert header[:2] == ["certificate", "client"] and "sha256" in header
    assert len(body) == 3
    by_cert = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    for r in (web_r, print_r, glob_request):
        row = by_cert[r.certificate.public_id]
        assert row["sha256"] == r.version.sha256
        assert row["client"] == r.version.deliverable.project.client.name
        assert row["version"] == "1"
    assert "Fix the logo" in by_cert[web_r.certificate.public_id]["conditions"]

    filtered = _csv(finance.get(f"/finance/export.csv?client={acme.id}&start=2025-02-01"))
    assert [row[0] for row in filtered[1:]] == [print_r.certificate.public_id]
    assert filtered[0] == header

    fragment = finance.get(f"/finance?client={acme.id}", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert html.lstrip().startswith('<div id="finance-results"')
    assert "<html" not in html and "<form" not in html
    assert "HX-Request" in fragment.headers["Vary"]
    assert "2 approved requests" in html
    full = finance.get(f"/finance?client={acme.id}")
    assert "HX-Request" in full.headers["Vary"] and "<html" in full.get_data(as_text=True)


def test_finance_list_paginates_25_a_page(app, make_deliverable, make_browser, make_user):
    made = [make_deliverable(S.APPROVED) for _ in range(27)]
    requests = [_request_of(d) for d in made]
    for n, r in enumerate(requests):  # distinct, known approval times: newest first
        _set_closed(r, datetime(2025, 5, 1, 9, n, tzinfo=UTC))
    names = [r.version.deliverable.project.client.name for r in requests]
    finance = _finance_browser(make_browser, make_user)

    first = finance.get("/finance").get_data(as_text=True)
    second = finance.get("/finance?page=2").get_data(as_text=True)
    assert "27 approved requests" in first
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    assert "page=2" in first

    def shown(html: str) -> set[str]:
        return set(re.findall(r'data-label="Client · project">(Client \d+)<br>', html))

    assert shown(first) == set(names[2:])  # the 25 newest
    assert shown(second) == set(names[:2])
    assert "being issued" in first  # no key here, so no certificate ids yet

    rows = _csv(finance.get("/finance/export.csv"))
    assert len(rows) == 1 + 27  # the export is not paginated
    assert {row[1] for row in rows[1:]} == set(names)
