"""The certificate in the language of the people it certifies: its headings, the "issued
in" line and its dates, read back out of the sealed PDF with pypdf; the language kept in
its audit event; Cyrillic that extracts as typed; and a long German compound that stays
inside the page."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
from babel.dates import format_date
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from pypdf import PdfReader
from sqlalchemy import select

from portal import workflow
from portal.certificates import create_development_key
from portal.certificates.language import issued_language
from portal.extensions import db
from portal.files.storage import file_store
from portal.i18n import in_language, request_language
from portal.local_time import format_when
from portal.models import AuditEvent, Certificate, DeliverableState, Outcome, Policy
from tests.conftest import future, on_screen

S = DeliverableState
ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "templates" / "certificates" / "certificate.html"
TRANSLATIONS = ROOT / "portal" / "translations"
# Written out here, not read from the catalogue: a catalogue that lost them fails.
PHRASES = {
    "en": ("Approval certificate", "Issued in English", "What was approved", "Decisions",
           "Audit trail", "Page 1 of 2"),
    "de": ("Freigabezertifikat", "Ausgestellt auf Deutsch", "Was freigegeben wurde",
           "Entscheidungen", "Audit-Protokoll", "Seite 1 von 2"),
    "fr": ("Certificat d’approbation", "Émis en français", "Ce qui a été approuvé",  # noqa: RUF001
           "Décisions", "Journal d’audit", "Page 1 sur 2"),  # noqa: RUF001
    "es": ("Certificado de aprobación", "Emitido en español", "Qué se aprobó", "Decisiones",
           "Registro de auditoría", "Página 1 de 2"),
    "ru": ("Сертификат одобрения", "Выдан на русском языке", "Что одобрено", "Решения",
           "Журнал аудита", "Страница 1 из 2"),
}
ENGLISH = (*PHRASES["en"], "Timeline of this request", "Internal review", "Identified by a "
           "personal link", "This document is sealed", "Client comments on this request",
           "Appendix: browsers", "When (UTC)")
LONG_WORD = ("Donaudampfschifffahrtsgesellschaftskapitänsmützenabzeichenherstellungs"
             "vertragsentwurfsbesprechungsprotokoll")
RIGHT_MARGIN_MM = 16  # static/css/certificate.css @page


@pytest.fixture(scope="session")
def seal_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return create_development_key(tmp_path_factory.mktemp("seal"), "Signoff languages seal")


@pytest.fixture
def signing(app_config: dict[str, Any], seal_key) -> None:
    """Request before `app`: approvals are sealed in process with the development key."""
    app_config.update(REDIS_URL="", SIGNING_KEY=str(seal_key[0]),
                      SIGNING_CERT=str(seal_key[1]), SIGNING_PKCS12="")


def _approved(make_client, make_project, make_deliverable, staff, code: str | None, *,
              title: str = "", names: tuple[str, ...] = (), client_name: str | None = None):
    """An approved request (one approval with a condition, one plain) for a client reading
    `code`, in Berlin; its certificate is issued by the in-process job at the commit."""
    client = make_client(name=client_name, contacts=2)
    client.language, client.timezone = code, "Europe/Berlin"
    for contact, name in zip(client.contacts, names, strict=False):
        contact.name = name
    db.session.commit()
    d = make_deliverable(S.READY, project=make_project(client))
    if title:
        d.title = title
    request = workflow.deliver(staff, d, client.contacts, Policy.PARALLEL, future(7))
    db.session.commit()
    first, second = request.approvers
    workflow.record_decision(first, Outcome.APPROVED_WITH_CONDITIONS, seen_sha256=on_screen(first),
                             conditions=["Swap the logo"], ip="203.0.113.7")
    workflow.record_decision(second, Outcome.APPROVED, seen_sha256=on_screen(second))
    db.session.commit()
    db.session.refresh(request)
    assert request.certificate is not None
    return request


def _pdf(certificate: Certificate) -> bytes:
    return file_store().read_bytes(certificate.storage_key)


def _words(pdf: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.split())


def _squash(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("code", list(PHRASES))
def test_the_certificate_is_issued_in_the_clients_language(
        signing, app, make_client, make_project, make_deliverable, staff, code):
    request = _approved(make_client, make_project, make_deliverable, staff, code)
    certificate = request.certificate
    words = _words(_pdf(certificate))

    for phrase in PHRASES[code]:
        assert phrase in words, (code, phrase)
    if code != "en":
        left = [phrase for phrase in ENGLISH if phrase in words]
        assert not left, (code, left)
    # The issue time in the client's zone, written the locale's way (CLDR's month too).
    with in_language(code):
        assert _squash(format_when(certificate.issued_at, request.version.deliverable
                                   .project.client.zone)) in words
    month = format_date(certificate.issued_at.date(), "MMM", locale=code)
    assert month in words, (code, month)
    assert "Swap the logo" in words and request.version.sha256[:16] in words.replace(" ", "")

    # The record of the language: the certificate.issued event, read back.
    assert issued_language(certificate) == code
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.verb == "certificate.issued"))
    assert json.loads(event.detail)["language"] == code


def test_a_russian_certificate_holds_cyrillic_that_extracts_as_typed(
        signing, app, make_client, make_project, make_deliverable, staff):
    names = ("Анна Петрова", "Юрий Щукин")
    request = _approved(make_client, make_project, make_deliverable, staff, "ru",
                        title="Главная страница «Весна»", names=names,
                        client_name="ООО «Ромашка»")  # noqa: RUF001
    pdf = _pdf(request.certificate)
    words = _words(pdf)
    for typed in ("ООО «Ромашка»", "Главная страница «Весна»", *names,  # noqa: RUF001
                  "Выдан на русском языке", "одобрена с условиями", "Журнал аудита"):  # noqa: RUF001
        assert typed in words, typed
    assert "\ufffd" not in words  # nothing lost in extraction
    # Every font drawn is one that covers Cyrillic (DejaVu), embedded in the file.
    fonts = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            fonts.add(str(font["/BaseFont"]))
            descendants = font.get("/DescendantFonts")
            if descendants is not None:
                for child in descendants:
                    assert "/FontFile2" in child.get_object()["/FontDescriptor"] or \
                        "/FontFile3" in child.get_object()["/FontDescriptor"]
    assert fonts and all("DejaVu" in name for name in fonts), fonts


def _ink_right_edge_mm(pdf: bytes) -> tuple[float, float]:
    """The rightmost drawn pixel over all pages, and the page width, in millimetres."""
    document = pypdfium2.PdfDocument(pdf)
    right, width = 0.0, 0.0
    scale = 2  # 144 dpi
    for index in range(len(document)):
        page = document[index]
        image = page.render(scale=scale).to_pil().convert("L")
        width = image.width
        pixels = image.load()
        for x in range(image.width - 1, -1, -1):
            if any(pixels[x, y] < 200 for y in range(image.height)):
                right = max(right, x + 1)
                break
    to_mm = 25.4 / (72 * scale)
    return right * to_mm, width * to_mm


def test_a_long_german_compound_stays_inside_the_page(
        signing, app, make_client, make_project, make_deliverable, staff):
    request = _approved(make_client, make_project, make_deliverable, staff, "de",
                        title=LONG_WORD)
    pdf = _pdf(request.certificate)
    right, width = _ink_right_edge_mm(pdf)
    assert right <= width - RIGHT_MARGIN_MM + 0.5, (right, width)
    # Broken across lines, not cut, lost or hyphenated: it extracts as typed.
    flat = _words(pdf).replace(" ", "")
    assert "\u2010" not in _words(pdf)
    assert flat.count(LONG_WORD) >= 2  # the outcome line and the facts


def test_which_language_a_request_is_certified_in(app, make_client, make_project,
                                                  make_deliverable):
    client = make_client(contacts=3)
    client.language = "de"
    db.session.commit()
    d = make_deliverable(S.DELIVERED, project=make_project(client), approvers=3)
    request = d.open_request
    contacts = [a.contact for a in request.approvers]

    assert request_language(request) == "de"  # nobody chose: the client's
    for contact in contacts:
        contact.language = "ru"
    assert request_language(request) == "ru"  # all approvers read Russian
    request.approvers[0].language = "fr"  # one switched on the review page
    assert request_language(request) == "de"  # they differ: the client's
    client.language = None
    app.config["PORTAL_LANGUAGE"] = "es"
    assert request_language(request) == "es"  # no client language: the portal's
    for approver in request.approvers:
        approver.language = "fr"
    assert request_language(request) == "fr"
    db.session.rollback()


@pytest.mark.parametrize("code", ["de", "fr", "es", "ru"])
def test_every_msgid_of_the_certificate_is_translated(code):
    with (TRANSLATIONS / code / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalogue = read_po(f, locale=code)
    options = {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}
    missing = []
    for path, method in ((TEMPLATE, "jinja2.ext:babel_extract"),
                         (ROOT / "portal/certificates/issue.py", "python"),
                         (ROOT / "portal/certificates/language.py", "python")):
        for _line, message, _comments, context in extract_from_file(
                method, str(path), options=options if method != "python" else None):
            key = message if isinstance(message, str) else message[0]
            entry = catalogue.get(key, context)
            strings = () if entry is None else (
                entry.string if isinstance(entry.string, tuple) else (entry.string,))
            if entry is None or not all(strings) or not strings or entry.fuzzy:
                missing.append(key)
    assert not missing
