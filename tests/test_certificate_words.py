"""What the certificate, /verify and the receipt say about a decision: the browser in a few
words (the full string once, in the certificate's appendix), and on /verify what a
certificate records, with "Genuine" kept for an uploaded file that matched."""
from __future__ import annotations

import io
import itertools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from pypdf import PdfReader

from portal import workflow
from portal.certificates import create_development_key
from portal.extensions import db
from portal.models import (
    Deliverable,
    DeliverableState,
    Outcome,
    ReviewRequest,
    Role,
    User,
    utcnow,
)
from portal.people.agency import update_identity
from portal.reports.devices import describe_device, numbered_user_agents
from portal.workflow.editing import Details, edit_details
from tests.conftest import IN_CI, SmtpSink, on_screen, stored_path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "certificates"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0.0.0 Safari/537.36")
# A corporate desktop's string, bloated by toolbars and agents: 500 characters.
BLOATED = (WINDOWS + " " + " ".join(f"CorpAgent{n}/{n}.0.{n * 7}" for n in range(1, 40)))[:500]
NAMES = ["Alexandrina Maximiliana von Hohenzollern-Sigmaringen-Württemberg",
         "Bartholomew Fitzgerald-Montgomery-Worthington",
         "Cornelia Wilhelmina Oppenheimer-Rothschild"]
EMAILS = ["alexandrina.maximiliana.von-hohenzollern@subsidiary-of-acme-holdings.example",
          "bartholomew@acme.example", "cornelia@acme.example"]
CONDITION = "Swap the logo for the 2025 one before print."
IP = "203.0.113.7"
AGENCY = "Brightside Studio Ltd"


@pytest.fixture(scope="session")
def seal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One development seal for the module's tests (RSA-3072 takes a moment)."""
    return create_development_key(tmp_path_factory.mktemp("words-seal"), "Words test seal")


@pytest.fixture(autouse=True)
def _keyed(app_config: dict[str, Any], seal: tuple[Path, Path], smtp_sink: SmtpSink) -> None:
    """A seal, jobs in process (the certificate is issued at the commit), mail to the sink."""
    key, cert = seal
    app_config.update(SIGNING_KEY=str(key), SIGNING_CERT=str(cert), SIGNING_PKCS12="",
                      REDIS_URL="", MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_sink.port)


# --- the summary --------------------------------------------------------------------------

@pytest.mark.parametrize(("user_agent", "expected"), [
    (IPHONE, "Safari 17 on iPhone"),
    (WINDOWS, "Chrome 131 on Windows 10"),
    (BLOATED, "Chrome 131 on Windows 10"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.2 Safari/605.1.15", "Safari 17 on Mac"),
    ("Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.1 Mobile/15E148 Safari/604.1", "Safari 17 on iPad"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
     "like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", "Chrome 131 on iPhone"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.6778.39 Mobile Safari/537.36", "Chrome 131 on Google Pixel 8 (Android 14)"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
     "Firefox 133 on Linux"),
    (WINDOWS + " Edg/131.0.2903.51", "Edge 131 on Windows 10"),
    ("Mozilla/5.0 (Test)", "unrecognised browser"),
    ("demo data", "unrecognised browser"),
    ("", "unknown browser"),
    (None, "unknown browser"),
])
def test_a_browser_is_summarised_in_a_few_words(user_agent, expected):
    assert describe_device(user_agent) == expected


def test_each_string_is_numbered_once_in_the_order_first_seen():
    assert numbered_user_agents([IPHONE, "", WINDOWS, IPHONE, None, BLOATED]) == {
        IPHONE: 1, WINDOWS: 2, BLOATED: 3}


# --- the certificate ----------------------------------------------------------------------

def _decide(make_client, make_project, make_deliverable) -> ReviewRequest:
    """Three approvers with long names: two on the same iPhone, one with a 500-character
    browser string; the second approves with a condition."""
    client = make_client(name="Acme Brandworks Internationale Holding GmbH & Co. KG", contacts=3)
    for contact, name, email in zip(client.contacts, NAMES, EMAILS, strict=True):
        contact.name, contact.email = name, email
    db.session.commit()
    d = make_deliverable(DeliverableState.DELIVERED, project=make_project(client), approvers=3)
    request = d.open_request
    choices = [(Outcome.APPROVED, [], IPHONE), (Outcome.APPROVED_WITH_CONDITIONS, [CONDITION],
                                                 BLOATED), (Outcome.APPROVED, [], IPHONE)]
    for approver, (outcome, conditions, user_agent) in zip(request.approvers, choices,
                                                           strict=True):
        workflow.record_decision(approver, outcome, "", ip=IP, user_agent=user_agent,
                                 conditions=conditions, seen_sha256=on_screen(approver))
    db.session.commit()  # runs the certificate job in process
    db.session.expire_all()
    request = db.session.get(Deliverable, d.id).requests[0]
    assert request.certificate is not None
    return request


def _words(pdf: bytes) -> str:
    return " ".join("\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf)).pages)
                    .split())


def _tops(pdf: bytes, needle: str) -> list[tuple[int, float]]:
    """(page index, top of the first character in points) of each place `needle` is printed,
    from PDFium's own character boxes."""
    found = []
    document = pdfium.PdfDocument(pdf)
    for index in range(len(document)):
        text = document[index].get_textpage()
        searcher = text.search(needle, match_case=True)
        while (hit := searcher.get_next()) is not None:
            found.append((index, text.get_charbox(hit[0])[3]))
    return found


def test_the_from_column_is_a_summary_and_the_appendix_holds_each_string_once(
        app, make_client, make_project, make_deliverable, report):
    request = _decide(make_client, make_project, make_deliverable)
    pdf = stored_path(app, request.certificate.storage_key).read_bytes()
    _render_pages(pdf, "words", report)  # test-artifacts/certificates/words-*-page-1.png
    words = _words(pdf)

    # The rows: the IP and the browser in words, pointing into the appendix.
    assert words.count(f"IP {IP} Safari 17 on iPhone [UA 1]") == 2
    assert words.count(f"IP {IP} Chrome 131 on Windows 10 [UA 2]") == 1
    appendix = words.split("Appendix: browsers as they identified themselves", 1)
    assert len(appendix) == 2, "no appendix"
    # Each full string once, in the appendix, under its number; nowhere else.
    flat_before, flat_appendix = (re.sub(r"\s+", "", part) for part in appendix)
    for number, user_agent in ((1, IPHONE), (2, BLOATED)):
        squashed = re.sub(r"\s+", "", user_agent)
        assert squashed not in flat_before
        assert flat_appendix.count(squashed) == 1
        assert f"UA{number}{squashed}" in flat_appendix
    assert "UA3" not in flat_appendix

    # The "from" cell is a few lines, not twenty: from its IP to its "[UA n]" in PDFium's
    # character boxes (a 500-character string took about 110 mm of one column before).
    ips, refs = _tops(pdf, f"IP {IP}")[:3], _tops(pdf, "[UA ")[:3]
    cells = [(ip[1] - ref[1]) * 25.4 / 72 for ip, ref in zip(ips, refs, strict=True)
             if ip[0] == ref[0]]
    # And so a row is as tall as the approver's name and address make it.
    names = [_tops(pdf, name.split()[0])[0] for name in NAMES]
    rows = [(a[1] - b[1]) * 25.4 / 72 for a, b in itertools.pairwise(names) if a[0] == b[0]]
    report(f"from cells {[f'{h:.1f} mm' for h in cells]}, rows {[f'{h:.1f} mm' for h in rows]}")
    assert len(cells) == 3 and rows, (ips, refs, names)
    assert max(cells) < 12, cells
    assert max(rows) < 45, rows


def _render_pages(pdf: bytes, name: str, report) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    backend = db.engine.dialect.name
    source = ARTIFACTS / f"{name}-{backend}.pdf"
    source.write_bytes(pdf)
    if shutil.which("pdftoppm") is None:
        if IN_CI:
            pytest.fail("pdftoppm is not installed (CI=true requires poppler-utils)")
        report("pdftoppm is not installed: not rendering the certificate to PNG")
        return
    prefix = ARTIFACTS / f"{name}-{backend}-page"
    for old in ARTIFACTS.glob(f"{prefix.name}*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(source), str(prefix)], check=True,
                   timeout=60)
    pngs = sorted(ARTIFACTS.glob(f"{prefix.name}*.png"))
    assert pngs and all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)


# --- /verify ------------------------------------------------------------------------------

def _seen(html: str) -> str:
    """The page's words, without tags; "a <b>b</b>, c" reads "a b , c", so tags that
    touch punctuation leave no space before it."""
    return re.sub(r" ([,.;:])", r"\1", " ".join(re.sub(r"<[^>]+>", " ", html).split()))


def _upload(browser, pdf: bytes):
    return browser.post("/verify", {"file": (io.BytesIO(pdf), "certificate.pdf")},
                        content_type="multipart/form-data")


def test_an_id_shows_what_the_certificate_records_and_only_a_file_is_genuine(
        app, make_client, make_project, make_deliverable, make_browser, make_user):
    update_identity(make_user(Role.ADMIN), AGENCY, "", "#2a5bd7", utcnow())
    request = _decide(make_client, make_project, make_deliverable)
    certificate = request.certificate
    public_id, version = certificate.public_id, request.version
    pdf = stored_path(app, certificate.storage_key).read_bytes()
    decided = {a.contact.name: a.decision.at for a in request.approvers}
    anonymous = make_browser()

    by_link = anonymous.get(f"/verify/{public_id}")
    by_form = anonymous.post("/verify", {"certificate_id": public_id.lower()})
    for page in (by_link, by_form):
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        text = _seen(html)
        assert f"Certificate {public_id} exists" in text
        assert f"{AGENCY} issued it on {certificate.issued_at:%Y-%m-%d %H:%M} UTC" in text
        assert "Genuine" not in html and "genuine" not in text.replace(
            "Only a file identical to the one issued is called genuine", "")
        assert "To check a copy you hold, upload the PDF" in text
        first, second, _ = NAMES
        assert (f"{first} approved version 1 of “Homepage v3” on "
                f"{decided[first]:%Y-%m-%d %H:%M} UTC") in text
        assert (f"{second} approved version 1 of “Homepage v3” with 1 condition on "
                f"{decided[second]:%Y-%m-%d %H:%M} UTC") in text
        assert f"{version.file_name}, version 1" in text and version.sha256 in text
        assert "Acme Brandworks Internationale Holding GmbH &amp; Co. KG" in html
        # Public page: no addresses, no browsers, nothing anyone wrote.
        for private in (*EMAILS, IP, "iPhone", "Mozilla", CONDITION):
            assert private not in html, private
        assert "never email or IP addresses, browsers, or what anyone wrote" in text

    genuine = _upload(anonymous, pdf).get_data(as_text=True)
    assert "<h2>Genuine</h2>" in genuine
    assert f"byte for byte, certificate {public_id}, issued by {AGENCY} on" in _seen(genuine)
    assert f"{NAMES[0]}</strong> approved version 1" in genuine
    for private in (*EMAILS, IP, "Mozilla", CONDITION):
        assert private not in genuine, private

    altered = bytearray(pdf)
    altered[len(pdf) // 2] ^= 0x01
    html = _upload(anonymous, bytes(altered)).get_data(as_text=True)
    assert "This file was altered after it was issued" in html and "Genuine" not in html
    assert f"{NAMES[0]}</strong> approved version 1" in html  # what the real one records

    unknown = anonymous.get("/verify/SO-ABCD-EFGH-JKLM").get_data(as_text=True)
    assert "No such certificate" in unknown and "exists" not in unknown

    # Renamed since (the deliverable by staff, a contact, the client, the agency): the
    # record says what the certificate printed, the names as they were at issue.
    deliverable = version.deliverable
    edit_details(db.session.get(User, deliverable.owner_id), deliverable,
                 Details("Homepage, renamed", deliverable.description or "",
                         deliverable.due_date))
    request.approvers[0].contact.name = "Alexandra Renamed"
    deliverable.project.client.name = "Renamed Client AG"
    update_identity(make_user(Role.ADMIN), "Renamed Agency", "", "#2a5bd7", utcnow())
    db.session.commit()
    page = anonymous.get(f"/verify/{public_id}").get_data(as_text=True)
    later = _seen(page[page.index('id="verify-result"'):])  # the answer, not the page's header
    assert f"{NAMES[0]} approved version 1 of “Homepage v3” on" in later
    assert f"{AGENCY} issued it on" in later
    assert "Acme Brandworks Internationale Holding GmbH &amp; Co. KG" in later
    for renamed in ("Homepage, renamed", "Alexandra Renamed", "Renamed Client AG",
                    "Renamed Agency"):
        assert renamed not in later, renamed


# --- the decision receipt -----------------------------------------------------------------

def test_the_receipt_names_the_browser_in_words_and_keeps_the_full_string(
        app, make_deliverable, smtp_sink):
    d = make_deliverable(DeliverableState.DELIVERED)
    approver = d.open_request.approvers[0]
    workflow.record_decision(approver, Outcome.APPROVED, ip=IP, user_agent=IPHONE,
                             seen_sha256=on_screen(approver))
    db.session.commit()
    receipts = [m for m in smtp_sink.to(approver.contact.email)
                if "decision on Homepage v3" in m["Subject"]]
    assert len(receipts) == 1, [m["Subject"] for m in smtp_sink.to(approver.contact.email)]
    text = receipts[0].get_body(preferencelist=("plain",)).get_content()
    assert f"From: IP address {IP}, Safari 17 on iPhone" in text.splitlines()
    assert f"Your browser identified itself as: {IPHONE}" in text
    html = receipts[0].get_body(preferencelist=("html",)).get_content()
    assert f"IP address {IP}, Safari 17 on iPhone" in html
